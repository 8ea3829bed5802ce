"""LLaVA-1.5 (transformers' llava-hf checkpoints, or LLaVA's original format: llava_original.py)
with an open_clip encoder swapped in.

RobustVLM convention: the 336 px CLIP tower is replaced by an open_clip ViT-L/14 at 224 px,
whose penultimate-block patch tokens (256 instead of 576) go to LLaVA's own projector;
greedy decoding; the vicuna_v1 conversation with its system line. The token count follows the
encoder: a 336 px /14 encoder gives LLaVA's native 576 (Delta2-LLaVA, trained on such a tower).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bench.encoders.weights import weights_sha256
from bench.vlm.llava_original import LlavaParts, is_lora, is_original_format, load_lora, load_merged, lora_base
from bench.vlm.projected import ProjectedVLM, Prompts, with_tuned_tower
from bench.vlm.registry import register_vlm
from bench.vlm.text import HFCodec
from benchutil.errors import BenchError

# RobustVLM's LLaVA evaluation (open_flamingo/eval/models/llava.py, EvalModelLLAVA): the
# vicuna_v1 conversation (llava/conversation.py) with its system line, these task prompts,
# images padded to a square with the CLIP mean colour (llava/mm_utils.py expand2square).
VICUNA_V1_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives "
                    "helpful, detailed, and polite answers to the user's questions.")
SHORT_ANSWER = "\nAnswer the question using a single word or phrase."
# get_vqa_prompt's suffix per dataset: VQAv2 and TextVQA get SHORT_ANSWER, VizWiz an instruction
# to say 'Unanswerable' before it. RobustVLM's has none for OK-VQA (it raises ValueError for
# "ok_vqa"); Sim-CLIP's copy of the file (speedlab-git/SimCLIP), whose paper reports LLaVA on
# OK-VQA, gives it SHORT_ANSWER, as we do.
UNANSWERABLE = "\nWhen the provided information is insufficient, respond with 'Unanswerable'."
LLAVA_PROMPTS = Prompts(caption="Provide a short caption for this image.",
                        question="{question}" + SHORT_ANSWER,
                        caption_tokens=20, answer_tokens=10,
                        dataset_questions={"vizwiz": "{question}" + UNANSWERABLE + SHORT_ANSWER})


def _weights_digest(*paths: Path) -> str:
    """sha256 over the weight files' own sha256s, in name order per folder (one value for sharded
    checkpoints, and for a LoRA folder with its base)."""
    import hashlib

    files = [f for path in paths for f in sorted([*path.glob("*.safetensors"), *path.glob("*.bin")])]
    if not files:
        return "unknown"
    return hashlib.sha256("".join(weights_sha256(f) for f in files).encode()).hexdigest()


def _local_dir(source: str, what: str = "LLaVA checkpoint") -> Path:
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists() or source.startswith((".", "/", "~")):
        raise BenchError(f"{what} {source} is not a model folder; pass a folder with config.json")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(source))
    except Exception as err:  # offline, unknown repo, ...: the hub raises many types
        raise BenchError(f"cannot get {what} {source} from the Hugging Face hub ({type(err).__name__}); "
                         f"download it once online or pass a local folder") from None


def split_base(source: str) -> tuple[str, str | None]:
    """'CHECKPOINT@BASE' -> (CHECKPOINT, BASE); hub ids never hold '@', so an existing path that
    does is taken whole."""
    if "@" not in source or Path(source).expanduser().exists():
        return source, None
    checkpoint, _, base = source.rpartition("@")
    if not checkpoint or not base:
        raise BenchError(f"--vlm llava:{source}: give both sides of '@', e.g. llava:FOLDER@lmsys/vicuna-7b-v1.5")
    return checkpoint, base


def _original_parts(path: Path, base: str | None, dtype: torch.dtype) -> LlavaParts:
    """An original-format (haotian-liu/LLaVA) checkpoint: merged, or LoRA over a base Llama
    (`base`, else the adapter's base_model_name_or_path)."""
    if is_lora(path):
        base = base or lora_base(path)
        if base is None:
            raise BenchError(f"LoRA checkpoint {path} names no base model; pass it as llava:{path}@BASE "
                             f"(e.g. lmsys/vicuna-7b-v1.5)")
        base_dir = _local_dir(base, "base model")
        if not (base_dir / "config.json").is_file():
            raise BenchError(f"base model folder {base_dir} has no config.json; pass a transformers Llama folder "
                             f"or hub id after '@'")
        return load_lora(path, base_dir, dtype)
    if base is not None:
        raise BenchError(f"{path} is a merged LLaVA checkpoint; only LoRA checkpoints take '@BASE'")
    return load_merged(path, dtype)


def _hf_parts(path: Path, dtype: torch.dtype) -> LlavaParts:
    """A llava-hf checkpoint: LlavaForConditionalGeneration without its vision tower."""
    from transformers import LlavaForConditionalGeneration

    if not (path / "config.json").is_file():
        raise BenchError(f"LLaVA checkpoint folder {path} has no config.json; pass a llava-hf model folder")
    model = LlavaForConditionalGeneration.from_pretrained(str(path), dtype=dtype).eval()
    inner = getattr(model, "model", model)
    inner.vision_tower = None  # replaced by the bench's encoder; dropping it frees its memory
    return LlavaParts(model, inner.multi_modal_projector, path, True, (path,))


def load_llava(encoder: nn.Module, source: str, device: str, name: str) -> ProjectedVLM:
    """`source`: a folder or hub id in the llava-hf format, or in LLaVA's original one (merged,
    or LoRA: `CHECKPOINT@BASE`), told apart by the folder's files."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise BenchError("LLaVA needs transformers: pip install transformers") from None
    checkpoint, base = split_base(source)
    path = _local_dir(checkpoint)
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    if is_original_format(path):
        parts = _original_parts(path, base, dtype)
    elif base is not None:
        raise BenchError(f"{path} is a llava-hf checkpoint; only LoRA checkpoints take '@BASE'")
    else:
        parts = _hf_parts(path, dtype)
    codec = HFCodec(AutoTokenizer.from_pretrained(str(parts.tokenizer_dir)))
    if codec.eos_id is None:
        raise BenchError(f"the tokenizer in {parts.tokenizer_dir} has no end-of-sequence token; use a LLaVA checkpoint")

    def frame(prompt: str) -> tuple[list[int], list[int]]:
        """'<system> USER: <image>\n<prompt> ASSISTANT:', each side of the image tokenised on its own
        as LLaVA's tokenizer_image_token does; the answer then '</s>' follow."""
        bos = [codec.bos_id] if codec.bos_id is not None else []
        return [*bos, *codec.encode(f"{VICUNA_V1_SYSTEM} USER: ")], codec.encode(f"\n{prompt} ASSISTANT:")

    if parts.vision_tower is not None:  # the checkpoint's own tuned tower, in a copy of the encoder
        encoder = with_tuned_tower(encoder, parts.vision_tower, checkpoint)
    vlm = ProjectedVLM(encoder, parts.projector.to(device), parts.lm.to(device).eval(), codec, frame, LLAVA_PROMPTS,
                       name)
    vlm.tower_state, vlm.tower_source = parts.vision_tower, checkpoint if parts.vision_tower is not None else None
    vlm.sha256 = _weights_digest(*parts.weight_dirs)
    if parts.pads_to_square:
        vlm.pad_colour = tuple(int(m * 255) for m in encoder.mean.flatten().tolist())  # CLIP mean: (122, 116, 104)
    return vlm


@register_vlm("llava-1.5-7b", "paper", "LLaVA-1.5-7B (hf llava-hf/llava-1.5-7b-hf), encoder swapped the RobustVLM "
              "way: 224 px, 256 tokens")
def _llava_15_7b(encoder: nn.Module, device: str, name: str) -> ProjectedVLM:
    return load_llava(encoder, "llava-hf/llava-1.5-7b-hf", device, name)


# Δ²LLaVA (Double Visual Defense, Wang et al. 2025; zw123/delta2_llava_{4,8}_v1_5_7b): LLaVA-1.5-7B
# instruction-tuned adversarially (LoRA, eps 4/255 or 8/255) on ΔCLIP-H/14 at 336 px (its projector
# takes 1280-dim tokens), over lmsys/vicuna-7b-v1.5; its authors evaluate it with RobustVLM's
# run_evaluation (ensemble, eps 4/255, 100 steps, 500 samples, fp16).
def _delta2_llava(eps: int) -> None:
    @register_vlm(f"delta2-llava-{eps}", "paper", f"Δ²LLaVA-1.5-7B, adversarial instruction tuning at {eps}/255 "
                  f"(LoRA zw123/delta2_llava_{eps}_v1_5_7b over lmsys/vicuna-7b-v1.5): with --encoder "
                  "delta-clip-h14-336, 576 tokens", aliases=("delta2-llava",) if eps == 4 else ())
    def load(encoder: nn.Module, device: str, name: str) -> ProjectedVLM:
        return load_llava(encoder, f"zw123/delta2_llava_{eps}_v1_5_7b@lmsys/vicuna-7b-v1.5", device, name)


for _eps in (4, 8):
    _delta2_llava(_eps)
