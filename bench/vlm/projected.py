"""A LLaVA-style VLM: CLIP patch tokens -> projector -> a causal language model.

The vision side is any `load_encoder` result, so a robust encoder is swapped in the
RobustVLM way: patch tokens of the penultimate block (no class token, no ln_post) go to
the projector. Images are pixels in [0,1]; normalisation happens inside the encoder, so
the attack's eps is in pixel units and the loss is differentiable w.r.t. the pixels.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn

from bench.encoders.weights import state_sha256
from bench.vlm.decoding import accepted_arguments, greedy_decode, keep_target_logits
from bench.vlm.text import TextCodec
from benchutil.errors import BenchError
from tasks.token_losses import mean_token_ce

# prompt -> (ids before the image tokens, ids after them); the answer follows directly.
Frame = Callable[[str], tuple[list[int], list[int]]]


@dataclass(frozen=True)
class Prompts:
    """How this VLM is asked for a caption and for a short answer, and how long it may talk."""

    caption: str
    question: str  # with {question}
    caption_tokens: int
    answer_tokens: int
    # Zero-shot prompts with text-only demonstrations before the query (OpenFlamingo's eval: 2)
    demonstrations: int = 0
    caption_demonstration: str = ""  # with {caption}
    question_demonstration: str = ""  # with {question} and {answer}
    # Decoding: beams (1 = greedy) and the beam search's length penalty per kind of output
    beams: int = 1
    caption_length_penalty: float = 0.0
    answer_length_penalty: float = 0.0
    # A dataset's own question template (with {question}), used instead of `question` by the VQA
    # tasks whose `prompt_key` names it (tasks/answer_records.py): RobustVLM's LLaVA asks VizWiz
    # with an extra instruction. Datasets without an entry are asked with `question`.
    dataset_questions: Mapping[str, str] = field(default_factory=dict, hash=False)

    def question_for(self, dataset: str | None) -> str:
        """The question template of `dataset`'s tasks: its own where this VLM has one, else `question`."""
        return self.dataset_questions.get(dataset, self.question) if dataset is not None else self.question


def check_images(images: Tensor, size: int) -> None:
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[-2:] != (size, size):
        raise BenchError(f"the VLM takes images [N, 3, {size}, {size}]; got {list(images.shape)}")


def penultimate_patch_tokens(encoder: nn.Module, x: Tensor) -> Tensor:
    """[B, patches, width]: the output of the second-to-last block, patch tokens only."""
    visual = encoder.visual
    blocks = len(visual.transformer.resblocks)
    pixels = (x - encoder.mean) / encoder.std
    out = visual.forward_intermediates(pixels, indices=[blocks - 2], stop_early=True, intermediates_only=True,
                                       normalize_intermediates=False, output_fmt="NLC")
    return out["image_intermediates"][0]


def with_tuned_tower(encoder: nn.Module, state: dict[str, Tensor], source: str) -> nn.Module:
    """A copy of `encoder` whose open_clip vision tower holds `state` (the encoder given stays as it
    is: the command's other tasks evaluate it). The copy's provenance names the tower's source."""
    tuned = copy.deepcopy(encoder)
    try:
        tuned.clip.visual.load_state_dict({k: v.to(tuned.mean.device) for k, v in state.items()})
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise BenchError(f"the vision tower {source} tuned does not fit encoder {encoder.provenance.name} ({first}); "
                         "give --encoder the tower it was tuned from") from None
    tuned.provenance = replace(encoder.provenance, source=f"{encoder.provenance.source} + tower of {source}",
                               sha256=f"{encoder.provenance.sha256}+tower:{state_sha256(state)}")
    return tuned.eval()


class ProjectedVLM(nn.Module):
    def __init__(self, encoder: nn.Module, projector: nn.Module, lm: nn.Module, codec: TextCodec, frame: Frame,
                 prompts: Prompts, name: str) -> None:
        super().__init__()
        self.encoder, self.projector, self.lm = encoder, projector, lm
        self.codec, self.frame, self.prompts, self.name = codec, frame, prompts, name
        self.image_size: int = encoder.image_size
        self.sha256 = "random"  # of the VLM's own weights (projector + LM); loaders set it
        self.pad_colour: tuple[int, int, int] | None = None  # LLaVA-1.5 pads to a square: its loader sets it
        # A vision tower the VLM's own training tuned (Δ²LLaVA): put into every encoder it runs with
        self.tower_state: dict[str, Tensor] | None = None
        self.tower_source: str | None = None
        self._check_widths()
        self._lm_arguments = accepted_arguments(lm.forward)

    def with_encoder(self, encoder: nn.Module) -> ProjectedVLM:
        """This VLM's projector and language model around another encoder (no copy, no reload)."""
        if self.tower_state is not None:
            encoder = with_tuned_tower(encoder, self.tower_state, self.tower_source or self.name)
        other = ProjectedVLM(encoder, self.projector, self.lm, self.codec, self.frame, self.prompts, self.name)
        other.sha256, other.pad_colour = self.sha256, self.pad_colour
        other.tower_state, other.tower_source = self.tower_state, self.tower_source
        return other

    def _check_widths(self) -> None:
        width = self.encoder.visual.transformer.width
        first = next(m for m in self.projector.modules() if isinstance(m, nn.Linear))
        if first.in_features != width:
            raise BenchError(f"encoder {self.encoder.provenance.name} gives {width}-dim patch tokens but the VLM's "
                             f"projector takes {first.in_features}; use an encoder of the VLM's architecture")

    def image_tokens(self, x: Tensor) -> Tensor:
        feats = penultimate_patch_tokens(self.encoder, x)
        dtype = next(self.projector.parameters()).dtype
        return self.projector(feats.to(dtype))

    def _layout(self, prompts: list[str], n_image: int, targets: list[list[int]]) -> dict[str, Tensor]:
        """Left-padded ids with image slots and answer labels; every row ends at the same column."""
        rows, labels = [], []
        for prompt, target in zip(prompts, targets):
            before, after = self.frame(prompt)
            rows.append([*before, *[-1] * n_image, *after, *target])
            labels.append([-100] * (len(rows[-1]) - len(target)) + target)
        length = max(map(len, rows))
        ids = torch.full((len(rows), length), self.codec.pad_id, dtype=torch.long)
        image = torch.zeros(len(rows), length, dtype=torch.bool)
        mask = torch.zeros(len(rows), length, dtype=torch.long)
        label = torch.full((len(rows), length), -100, dtype=torch.long)
        for i, (row, lab) in enumerate(zip(rows, labels)):
            start = length - len(row)
            r = torch.tensor(row)
            image[i, start:] = r == -1
            ids[i, start:] = r.clamp(min=0)
            mask[i, start:] = 1
            label[i, start:] = torch.tensor(lab)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        return {"ids": ids, "image": image, "mask": mask, "labels": label, "positions": positions}

    def _embed(self, x: Tensor, layout: dict[str, Tensor]) -> Tensor:
        tokens = self.image_tokens(x)
        embeds = self.lm.get_input_embeddings()(layout["ids"]).clone()
        embeds[layout["image"]] = tokens.reshape(-1, tokens.shape[-1]).to(embeds.dtype)
        return embeds

    def _device(self, layout: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
        return {k: v.to(device) for k, v in layout.items()}

    def loss(self, images: Tensor, prompts: list[str], targets: list[str]) -> Tensor:
        """Per-sample mean cross-entropy of each target (then end-of-text) given image and prompt."""
        return mean_token_ce(*self.target_logits(images, prompts, targets))

    def target_logits(self, images: Tensor, prompts: list[str], targets: list[str]) -> tuple[Tensor, Tensor]:
        """(logits [B, T', V], labels [B, T]): the predictions of the next token at the last T'
        positions (those of the target's tokens, then end-of-text: the LM computes no other
        logits); labels -100 except on those tokens."""
        ids = [[*self.codec.encode(t), self.codec.eos_id] for t in targets]
        return self.logits_for_ids(images, prompts, ids)

    def loss_ids(self, images: Tensor, prompts: list[str], targets: list[list[int]]) -> Tensor:
        return mean_token_ce(*self.logits_for_ids(images, prompts, targets))

    def logits_for_ids(self, images: Tensor, prompts: list[str], targets: list[list[int]]) -> tuple[Tensor, Tensor]:
        n_image = self._n_image(images)
        layout = self._device(self._layout(prompts, n_image, targets), images.device)
        embeds = self._embed(images, layout)
        logits = self.lm(inputs_embeds=embeds, attention_mask=layout["mask"], position_ids=layout["positions"],
                         use_cache=False, **keep_target_logits(self._lm_arguments, targets)).logits
        return logits[:, :-1], layout["labels"][:, 1:]

    def _n_image(self, images: Tensor) -> int:
        check_images(images, self.image_size)
        patch = self.encoder.visual.patch_size
        patch = patch[0] if isinstance(patch, tuple) else patch
        return (self.image_size // patch) ** 2

    @torch.no_grad()
    def generate(self, images: Tensor, prompts: list[str], max_new_tokens: int,
                 length_penalty: float = 0.0) -> list[str]:
        """Greedy decoding with a key-value cache, batched with left padding (RobustVLM decodes
        LLaVA with one beam, so no length penalty applies)."""
        layout = self._device(self._layout(prompts, self._n_image(images), [[] for _ in prompts]), images.device)
        embedding = self.lm.get_input_embeddings()
        rows = greedy_decode(self.lm, self._lm_arguments, {"inputs_embeds": self._embed(images, layout)},
                             lambda token: {"inputs_embeds": embedding(token)}, layout["mask"], self.codec.eos_id,
                             max_new_tokens)
        return [self.codec.decode(row) for row in rows]
