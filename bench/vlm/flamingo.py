"""OpenFlamingo (the `open_flamingo` package) with an open_clip encoder swapped in.

OpenFlamingo-9B reads the last block's patch tokens (without ln_post: LastPatchTokens) of an
open_clip ViT-L/14 through a perceiver into gated cross-attention layers of MPT-7B; RobustVLM swaps
the robust encoder in directly. The package encodes images under torch.no_grad(), so the
loss below conditions the language model itself (same modules, same order) to keep the
pixel gradient; generation repeats the package's Flamingo.generate the same way.

Precision: RobustVLM loads the whole model in float16 on the GPU (`load_dtypes`); on CPU
everything is float32. `open-flamingo-9b-bf16` keeps this project's earlier layout.

open_flamingo 2.0.1 pins torch==2.0.1 in its metadata, yet its code runs on current torch
and transformers: install it with `pip install --no-deps open_flamingo einops einops-exts`.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bench.encoders.weights import hub_file, weights_sha256
from bench.vlm.decoding import accepted_arguments, greedy_decode, keep_target_logits
from bench.vlm.projected import Prompts, check_images
from bench.vlm.registry import register_vlm
from bench.vlm.text import HFCodec
from benchutil.errors import BenchError
from tasks.demonstrations import without_colons
from tasks.token_losses import mean_token_ce

END_OF_CHUNK = "<|endofchunk|>"
MEDIA = "<image>"
# RobustVLM's OpenFlamingo evaluation (vlm_eval/run_evaluation.py; of_eval_model_adv.py
# get_caption_prompt / get_vqa_prompt): two text-only demonstrations before the query, beam
# search with 3 beams, length penalty -2.0 for captions (evaluate_captioning) and 0.0 for
# answers (evaluate_vqa). get_vqa_prompt is the same for every VQA dataset (VizWiz and OK-VQA
# included), so there are no dataset_questions.
FLAMINGO_PROMPTS = Prompts(caption="<image>Output:", question="<image>Question:{question} Short answer:",
                           caption_tokens=20, answer_tokens=5, demonstrations=2,
                           caption_demonstration="Output:{caption}" + END_OF_CHUNK,
                           question_demonstration="Question:{question} Short answer:{answer}" + END_OF_CHUNK,
                           beams=3, caption_length_penalty=-2.0, answer_length_penalty=0.0)
INSTALL = "pip install --no-deps open_flamingo einops einops-exts"
# RobustVLM tokenises the attacked strings with truncation at 2000 tokens (of_eval_model_adv.py set_inputs).
MAX_TOKENS = 2000

# The dtype of each part of the model as loaded on CUDA. RobustVLM runs OpenFlamingo with
# `--precision float16` (bash/of_eval_9B.sh) and casts the whole model to it, vision encoder
# included (of_eval_model_adv.py EvalModelAdv.__init__: model.to(device, dtype=get_cast_dtype(...))),
# for its clean pass and its float16 attack passes; it reloads everything in float32 for the
# later passes. "bf16" is this project's earlier layout (language side in bf16, encoder float32).
FLAMINGO_PARTS = ("vision_encoder", "perceiver", "lang_encoder")
LOAD_DTYPES: dict[str, dict[str, torch.dtype]] = {
    "fp16": dict.fromkeys(FLAMINGO_PARTS, torch.float16),
    "bf16": {"vision_encoder": torch.float32, "perceiver": torch.bfloat16, "lang_encoder": torch.bfloat16},
}


def load_dtypes(device: str, layout: str = "fp16") -> dict[str, torch.dtype]:
    """The dtype each part of OpenFlamingo is loaded in on `device`: LOAD_DTYPES[layout] on CUDA
    (RobustVLM's float16 by default), float32 everywhere else (CPU, the tests)."""
    if layout not in LOAD_DTYPES:
        raise ValueError(f"layout={layout!r} is not one of {', '.join(LOAD_DTYPES)}")
    if not device.startswith("cuda"):
        return dict.fromkeys(FLAMINGO_PARTS, torch.float32)
    return dict(LOAD_DTYPES[layout])


class LastPatchTokens(nn.Module):
    """What Flamingo expects of its vision encoder: (_, patch tokens of the last block).

    OpenFlamingo-9B was trained on open_clip <= 2.22, whose VisionTransformer.forward returns
    as tokens the last block's patch outputs WITHOUT ln_post (ln_post went to the pooled
    output only; from 2.23 the tokens are normalised too). The checkpoint's perceiver expects
    the old tokens, so they are taken here without ln_post, whatever open_clip is installed.

    With a half-precision `dtype` the tokens come from a copy of the tower in that dtype (the
    encoder itself stays float32: other tasks and the next VLM share it). Once that copy is
    held in float32 (attacks.precision.float32_weights casts every weight up for the float32
    stage), the encoder's own float32 tower computes instead: RobustVLM reloads the encoder's
    float32 weights for those passes, and the copy's would be rounded.
    """

    def __init__(self, visual: nn.Module, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.visual = visual
        self.low = copy.deepcopy(visual).to(dtype) if dtype != torch.float32 else None

    def tower(self) -> nn.Module:
        if self.low is not None and next(self.low.parameters()).dtype != torch.float32:
            return self.low
        return self.visual

    @property
    def dtype(self) -> torch.dtype:
        """What the tower computes in now (its input is normalised in it, as RobustVLM normalises
        the float16 image)."""
        return next(self.tower().parameters()).dtype

    def forward(self, pixels: Tensor) -> tuple[None, Tensor]:
        tower = self.tower()
        out = tower.forward_intermediates(pixels.to(next(tower.parameters()).dtype), indices=1,
                                          normalize_intermediates=False, intermediates_only=True, output_fmt="NLC")
        return None, out["image_intermediates"][0]


class FlamingoVLM(nn.Module):
    def __init__(self, encoder: nn.Module, flamingo: nn.Module, tokenizer: Any, name: str,
                 vision_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.encoder, self.flamingo, self.name = encoder, flamingo, name
        self.vision_dtype = vision_dtype
        flamingo.vision_encoder = LastPatchTokens(encoder.visual, vision_dtype)  # the swap
        self.tokenizer = tokenizer
        tokenizer.padding_side = "left"
        self.codec = HFCodec(tokenizer)
        self.prompts = FLAMINGO_PROMPTS
        self.image_size: int = encoder.image_size
        self.sha256 = "random"

    def with_encoder(self, encoder: nn.Module) -> FlamingoVLM:
        """The same Flamingo (perceiver, cross-attention, language model) around another encoder."""
        other = FlamingoVLM(encoder, self.flamingo, self.tokenizer, self.name, self.vision_dtype)
        other.sha256, other.prompts = self.sha256, self.prompts
        return other

    def _normalised(self, images: Tensor) -> Tensor:
        """CLIP's normalisation, computed in the dtype the vision tower computes in (RobustVLM casts
        the image to float16 and normalises it there)."""
        check_images(images, self.image_size)
        dtype = self.flamingo.vision_encoder.dtype
        return (images.to(dtype) - self.encoder.mean.to(dtype)) / self.encoder.std.to(dtype)

    def _condition(self, images: Tensor, ids: Tensor) -> None:
        """Flamingo's own conditioning (vision -> perceiver -> cross-attention layers), with gradients."""
        flamingo = self.flamingo
        vision = flamingo.vision_encoder(self._normalised(images))[1][:, None, None]  # [B, T=1, F=1, tokens, width]
        vision = vision.to(next(flamingo.perceiver.parameters()).dtype)  # float32 too while the VLM is cast up
        vision = flamingo.perceiver(vision)
        for layer in flamingo.lang_encoder._get_decoder_layers():
            layer.condition_vis_x(vision)
        flamingo._condition_media_locations(input_ids=ids)

    def _accepted(self) -> set[str]:
        lang = self.flamingo.lang_encoder
        return accepted_arguments(lang.__class__.__bases__[-1].forward)  # the LM under the Flamingo mixin

    def _special_id(self, token: str) -> int:
        return int(self.tokenizer.convert_tokens_to_ids(token))

    def attacked_tokens(self, prompts: list[str], targets: list[str]) -> tuple[Tensor, Tensor, Tensor]:
        """(ids, attention mask, labels), each [B, T], of the strings RobustVLM attacks.

        The string is the prompt, the target with its colons removed and <|endofchunk|>, with
        nothing in between (of_eval_model_adv.py get_caption_prompt / get_vqa_prompt, as
        run_evaluation.py evaluate_captioning / evaluate_vqa build `batch_text_adv`),
        tokenised as one string per row, the batch left-padded to its longest row (set_inputs).
        Labels as models/utils.py get_label (mode "colon") keeps them: the ids after the last
        ':' token of the row (the id of `tokenizer.encode(":")[0]`), except padding, the first
        position, <image> and <|endofchunk|>.
        """
        texts = [prompt + without_colons(target) + END_OF_CHUNK for prompt, target in zip(prompts, targets)]
        batch = self.tokenizer(texts, padding="longest", truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        ids, mask = batch["input_ids"], batch["attention_mask"]
        colon = self.tokenizer.encode(":")[0]
        labels = ids.clone()
        for row, text in enumerate(texts):
            colons = (ids[row] == colon).nonzero().flatten()
            if len(colons) == 0:  # RobustVLM's get_label fails here too (an IndexError)
                raise BenchError(f"the attacked string {text!r} has no ':' token; RobustVLM's label mask counts "
                                 "the tokens after the last one")
            labels[row, : int(colons[-1]) + 1] = -100
        labels[:, 0] = -100
        for special in (self.tokenizer.pad_token_id, self._special_id(MEDIA), self._special_id(END_OF_CHUNK)):
            if special is not None:  # open_flamingo's factory gives every tokenizer a pad token
                labels[ids == special] = -100
        return ids, mask, labels

    def loss(self, images: Tensor, prompts: list[str], targets: list[str]) -> Tensor:
        """Per-sample mean cross-entropy of the labelled tokens of the attacked string.

        RobustVLM's OpenFlamingo loss (of_eval_model_adv.py compute_loss) sums the token losses
        that get_label keeps (`attacked_tokens`). We average instead: a positive per-sample
        factor, which changes neither the sign (L-inf) or direction (L2) of a step nor any of
        APGD's per-sample comparisons, so the attacks take the same steps.
        """
        return mean_token_ce(*self.target_logits(images, prompts, targets))

    def target_logits(self, images: Tensor, prompts: list[str], targets: list[str]) -> tuple[Tensor, Tensor]:
        """(logits [B, T', V], labels [B, T]) of the attacked strings (`attacked_tokens`): the logits
        at position t predict the label at t + 1 (RobustVLM's compute_loss shifts the labels so),
        computed at the last T' positions only where the LM allows."""
        ids, mask, label = self.attacked_tokens(prompts, targets)
        tails = []  # each row's ids from its first labelled position on (left padding: they end the row)
        for row, counted in zip(ids.tolist(), (label != -100).tolist()):
            tails.append(row[counted.index(True) if True in counted else len(row):])
        ids, mask, label = ids.to(images.device), mask.to(images.device), label.to(images.device)
        positions = {"position_ids": (mask.cumsum(1) - 1).clamp(min=0)} if "position_ids" in self._accepted() else {}
        self._condition(images, ids)
        try:
            logits = self.flamingo.lang_encoder(input_ids=ids, attention_mask=mask, **positions,
                                                **keep_target_logits(self._accepted(), tails)).logits
        finally:
            self.flamingo.lang_encoder.clear_conditioned_layers()
        return logits[:, :-1], label[:, 1:]

    @torch.no_grad()
    def generate(self, images: Tensor, prompts: list[str], max_new_tokens: int,
                 length_penalty: float = 0.0) -> list[str]:
        """Beam search with self.prompts.beams beams (greedy for 1); after the prompt every new
        token attends to the cached image. As the package's Flamingo.generate: the images are
        repeated per beam and the language model's own generate searches; greedy decoding is
        ours (the package's needs an attention mask transformers 5 drops)."""
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True)
        ids, mask = batch["input_ids"].to(images.device), batch["attention_mask"].to(images.device)
        lang, beams = self.flamingo.lang_encoder, self.prompts.beams
        if beams > 1 and bool(mask.all()):
            # transformers 5's generate drops an all-ones attention mask, which the Flamingo
            # mixin's forward requires: one masked pad column on the left keeps it (a masked key
            # adds nothing to attention).
            ids = torch.cat([torch.full_like(ids[:, :1], self.tokenizer.pad_token_id), ids], dim=1)
            mask = torch.cat([torch.zeros_like(mask[:, :1]), mask], dim=1)
        self._condition(images.repeat_interleave(beams, dim=0), ids.repeat_interleave(beams, dim=0))
        lang._use_cached_vision_x = True
        try:
            if beams == 1:
                rows = greedy_decode(lang, self._accepted(), {"input_ids": ids}, lambda token: {"input_ids": token},
                                     mask, self.flamingo.eoc_token_id, max_new_tokens)
            else:
                out = lang.generate(input_ids=ids, attention_mask=mask, num_beams=beams, length_penalty=length_penalty,
                                    max_new_tokens=max_new_tokens, min_new_tokens=0, do_sample=False,
                                    eos_token_id=self.flamingo.eoc_token_id, pad_token_id=self.tokenizer.pad_token_id)
                rows = out[:, ids.shape[1]:].tolist()
        finally:
            lang._use_cached_vision_x = False
            lang.clear_conditioned_layers()
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in rows]


def build_flamingo(encoder: nn.Module, lang: str, checkpoint: Path | None, cross_attn_every_n_layers: int,
                   name: str, dtypes: dict[str, torch.dtype] | None = None) -> FlamingoVLM:
    """OpenFlamingo around `encoder`: language model and tokenizer from `lang` (folder or hub id),
    the trained perceiver and cross-attention from `checkpoint` (read with weights_only=True),
    each part in its dtype of `dtypes` (`load_dtypes`; default float32 everywhere)."""
    try:
        from open_flamingo import create_model_and_transforms
    except ImportError:
        raise BenchError(f"OpenFlamingo needs the open_flamingo package: {INSTALL}") from None
    import contextlib
    import io

    dtypes = dtypes or dict.fromkeys(FLAMINGO_PARTS, torch.float32)
    # The package builds its own (random) vision encoder of the encoder's architecture; it is
    # replaced. It also prints a parameter count on stdout, where our summary table goes.
    with contextlib.redirect_stdout(io.StringIO()):
        flamingo, _, tokenizer = create_model_and_transforms(encoder.provenance.architecture, None, lang, lang,
                                                             cross_attn_every_n_layers=cross_attn_every_n_layers)
    vlm = FlamingoVLM(encoder, flamingo, tokenizer, name, dtypes["vision_encoder"])
    if checkpoint is not None:
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as err:  # a damaged or non-tensor pickle: torch raises several types
            raise BenchError(f"OpenFlamingo checkpoint {checkpoint} cannot be read ({type(err).__name__}); "
                             f"re-download it") from None
        state = {k: v for k, v in state.items() if not k.startswith("vision_encoder.")}
        missing = flamingo.load_state_dict(state, strict=False)
        trained = [k for k in missing.missing_keys if "perceiver" in k or "gated_cross_attn" in k]
        if trained:
            raise BenchError(f"OpenFlamingo checkpoint {checkpoint} lacks {trained[0]}; is it an OpenFlamingo "
                             "checkpoint?")
        vlm.sha256 = weights_sha256(checkpoint)
    # As RobustVLM's model.to(dtype=...): every floating weight and buffer, the gated
    # cross-attention layers (inside the language model) included.
    flamingo.lang_encoder.to(dtypes["lang_encoder"])
    flamingo.perceiver.to(dtypes["perceiver"])
    return vlm


def _load_9b(encoder: nn.Module, device: str, name: str, layout: str) -> FlamingoVLM:
    """OpenFlamingo-9B (ViT-L/14 + MPT-7B, cross-attention every 4th layer) from the hub."""
    checkpoint = hub_file("openflamingo/OpenFlamingo-9B-vitl-mpt7b", "checkpoint.pt")
    vlm = build_flamingo(encoder, "anas-awadalla/mpt-7b", checkpoint, 4, name, load_dtypes(device, layout))
    return vlm.to(device).eval()


@register_vlm("open-flamingo-9b", "paper", "OpenFlamingo-9B (openflamingo/OpenFlamingo-9B-vitl-mpt7b + MPT-7B), the "
              "encoder's ViT-L/14 swapped in, float16 on CUDA as RobustVLM; needs: pip install --no-deps "
              "open_flamingo einops einops-exts")
def load_open_flamingo_9b(encoder: nn.Module, device: str, name: str) -> FlamingoVLM:
    return _load_9b(encoder, device, name, "fp16")


@register_vlm("open-flamingo-9b-bf16", "paper", "open-flamingo-9b with its language model and perceiver in bf16 on "
              "CUDA and the encoder in float32 (not RobustVLM's precision)")
def load_open_flamingo_9b_bf16(encoder: nn.Module, device: str, name: str) -> FlamingoVLM:
    return _load_9b(encoder, device, name, "bf16")
