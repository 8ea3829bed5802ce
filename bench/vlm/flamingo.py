"""OpenFlamingo (the `open_flamingo` package) with an open_clip encoder swapped in.

OpenFlamingo-9B reads patch tokens of the last block after ln_post from an open_clip
ViT-L/14 through a perceiver into gated cross-attention layers of MPT-7B; RobustVLM swaps
the robust encoder in directly. The package encodes images under torch.no_grad(), so the
loss below conditions the language model itself (same modules, same order) to keep the
pixel gradient; generation goes through the package's own generate().

open_flamingo 2.0.1 pins torch==2.0.1 in its metadata, yet its code runs on current torch
and transformers: install it with `pip install --no-deps open_flamingo einops einops-exts`.
"""
from __future__ import annotations

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
from tasks.token_losses import mean_token_ce

END_OF_CHUNK = "<|endofchunk|>"
# RobustVLM's OpenFlamingo evaluation (vlm_eval/run_evaluation.py; of_eval_model_adv.py
# get_caption_prompt / get_vqa_prompt): two text-only demonstrations before the query, beam
# search with 3 beams, length penalty -2.0 for captions (evaluate_captioning) and 0.0 for
# answers (evaluate_vqa).
FLAMINGO_PROMPTS = Prompts(caption="<image>Output:", question="<image>Question:{question} Short answer:",
                           caption_tokens=20, answer_tokens=5, demonstrations=2,
                           caption_demonstration="Output:{caption}" + END_OF_CHUNK,
                           question_demonstration="Question:{question} Short answer:{answer}" + END_OF_CHUNK,
                           beams=3, caption_length_penalty=-2.0, answer_length_penalty=0.0)
INSTALL = "pip install --no-deps open_flamingo einops einops-exts"


class LastPatchTokens(nn.Module):
    """What Flamingo expects of its vision encoder: (_, patch tokens of the last block).

    OpenFlamingo-9B was trained on open_clip <= 2.22, whose VisionTransformer.forward returns
    as tokens the last block's patch outputs WITHOUT ln_post (ln_post went to the pooled
    output only; from 2.23 the tokens are normalised too). The checkpoint's perceiver expects
    the old tokens, so they are taken here without ln_post, whatever open_clip is installed.
    """

    def __init__(self, visual: nn.Module) -> None:
        super().__init__()
        self.visual = visual
        self.dtype = torch.float32  # of the perceiver that reads the tokens (the encoder stays float32)

    def forward(self, pixels: Tensor) -> tuple[None, Tensor]:
        out = self.visual.forward_intermediates(pixels, indices=1, normalize_intermediates=False,
                                                intermediates_only=True, output_fmt="NLC")
        return None, out["image_intermediates"][0].to(self.dtype)


class FlamingoVLM(nn.Module):
    def __init__(self, encoder: nn.Module, flamingo: nn.Module, tokenizer: Any, name: str) -> None:
        super().__init__()
        self.encoder, self.flamingo, self.name = encoder, flamingo, name
        flamingo.vision_encoder = LastPatchTokens(encoder.visual)  # the swap
        self.tokenizer = tokenizer
        tokenizer.padding_side = "left"
        self.codec = HFCodec(tokenizer)
        self.prompts = FLAMINGO_PROMPTS
        self.image_size: int = encoder.image_size
        self.sha256 = "random"

    def with_encoder(self, encoder: nn.Module) -> FlamingoVLM:
        """The same Flamingo (perceiver, cross-attention, language model) around another encoder."""
        other = FlamingoVLM(encoder, self.flamingo, self.tokenizer, self.name)
        other.sha256, other.prompts = self.sha256, self.prompts
        return other

    def _normalised(self, images: Tensor) -> Tensor:
        check_images(images, self.image_size)
        return (images - self.encoder.mean) / self.encoder.std

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

    def loss(self, images: Tensor, prompts: list[str], targets: list[str]) -> Tensor:
        """Per-sample mean cross-entropy of the target's tokens after each prompt.

        RobustVLM's OpenFlamingo loss (of_eval_model_adv.py compute_loss, models/utils.py
        get_label) counts the tokens after the prompt's last ':' except <|endofchunk|>, and
        sums them. We average instead: a positive per-sample factor, which changes neither
        the sign (L-inf) or direction (L2) of a step nor any of APGD's per-sample comparisons,
        so the attacks take the same steps.
        """
        return mean_token_ce(*self.target_logits(images, prompts, targets))

    def target_logits(self, images: Tensor, prompts: list[str], targets: list[str]) -> tuple[Tensor, Tensor]:
        """(logits [B, T', V], labels [B, T]) of ' target<|endofchunk|>' after each prompt, logits at
        the last T' positions only where the LM allows; labels are -100 except on the target's
        own tokens (not <|endofchunk|>, as RobustVLM's get_label)."""
        rows, labels, tails = [], [], []
        for prompt, target in zip(prompts, targets):
            head = self.tokenizer(prompt)["input_ids"]
            text = target if target[:1].isspace() else " " + target
            answer = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            end = self.tokenizer(END_OF_CHUNK, add_special_tokens=False)["input_ids"]
            rows.append([*head, *answer, *end])
            labels.append([-100] * len(head) + answer + [-100] * len(end))
            tails.append([*answer, *end])
        length = max(map(len, rows))
        pad = self.codec.pad_id
        ids = torch.tensor([[pad] * (length - len(r)) + r for r in rows], device=images.device)
        mask = torch.tensor([[0] * (length - len(r)) + [1] * len(r) for r in rows], device=images.device)
        label = torch.tensor([[-100] * (length - len(r)) + r for r in labels], device=images.device)
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
                   name: str) -> FlamingoVLM:
    """OpenFlamingo around `encoder`: language model and tokenizer from `lang` (folder or hub id),
    the trained perceiver and cross-attention from `checkpoint` (read with weights_only=True)."""
    try:
        from open_flamingo import create_model_and_transforms
    except ImportError:
        raise BenchError(f"OpenFlamingo needs the open_flamingo package: {INSTALL}") from None
    import contextlib
    import io

    # The package builds its own (random) vision encoder of the encoder's architecture; it is
    # replaced. It also prints a parameter count on stdout, where our summary table goes.
    with contextlib.redirect_stdout(io.StringIO()):
        flamingo, _, tokenizer = create_model_and_transforms(encoder.provenance.architecture, None, lang, lang,
                                                             cross_attn_every_n_layers=cross_attn_every_n_layers)
    vlm = FlamingoVLM(encoder, flamingo, tokenizer, name)
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
    return vlm


@register_vlm("open-flamingo-9b", "paper", "OpenFlamingo-9B (openflamingo/OpenFlamingo-9B-vitl-mpt7b + MPT-7B), the "
              "encoder's ViT-L/14 swapped in; needs: pip install --no-deps open_flamingo einops einops-exts")
def load_open_flamingo_9b(encoder: nn.Module, device: str, name: str) -> FlamingoVLM:
    """OpenFlamingo-9B (ViT-L/14 + MPT-7B, cross-attention every 4th layer) from the hub."""
    checkpoint = hub_file("openflamingo/OpenFlamingo-9B-vitl-mpt7b", "checkpoint.pt")
    vlm = build_flamingo(encoder, "anas-awadalla/mpt-7b", checkpoint, 4, name)
    if device.startswith("cuda"):  # the language side in bf16; pixels, encoder and attack stay float32
        vlm.flamingo.lang_encoder.to(torch.bfloat16)
        vlm.flamingo.perceiver.to(torch.bfloat16)
        vlm.flamingo.vision_encoder.dtype = torch.bfloat16
    return vlm.to(device).eval()
