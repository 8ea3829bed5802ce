"""LLaVA-1.5 (transformers' llava-hf checkpoints) with an open_clip encoder swapped in.

RobustVLM convention: the 336 px CLIP tower is replaced by an open_clip ViT-L/14 at 224 px,
whose penultimate-block patch tokens (256 instead of 576) go to LLaVA's own projector;
greedy decoding; the vicuna_v1 conversation with its system line.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bench.encoders.weights import weights_sha256
from bench.vlm.projected import ProjectedVLM, Prompts
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


def _weights_digest(path: Path) -> str:
    """sha256 over the weight files' own sha256s, in name order (one value for sharded checkpoints)."""
    import hashlib

    files = sorted([*path.glob("*.safetensors"), *path.glob("*.bin")])
    if not files:
        return "unknown"
    return hashlib.sha256("".join(weights_sha256(f) for f in files).encode()).hexdigest()


def _local_dir(source: str) -> Path:
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists() or source.startswith((".", "/", "~")):
        raise BenchError(f"LLaVA checkpoint {source} is not a llava-hf model folder; pass a folder with config.json")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(source))
    except Exception as err:  # offline, unknown repo, ...: the hub raises many types
        raise BenchError(f"cannot get LLaVA checkpoint {source} from the Hugging Face hub ({type(err).__name__}); "
                         f"download it once online or pass a local folder") from None


def load_llava(encoder: nn.Module, source: str, device: str, name: str) -> ProjectedVLM:
    try:
        from transformers import AutoTokenizer, LlavaForConditionalGeneration
    except ImportError:
        raise BenchError("LLaVA needs transformers: pip install transformers") from None
    path = _local_dir(source)
    if not (path / "config.json").is_file():
        raise BenchError(f"LLaVA checkpoint folder {path} has no config.json; pass a llava-hf model folder")
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    model = LlavaForConditionalGeneration.from_pretrained(str(path), dtype=dtype).to(device).eval()
    inner = getattr(model, "model", model)
    projector = inner.multi_modal_projector
    inner.vision_tower = None  # replaced by `encoder`; dropping it frees its memory
    codec = HFCodec(AutoTokenizer.from_pretrained(str(path)))
    if codec.eos_id is None:
        raise BenchError(f"the tokenizer in {path} has no end-of-sequence token; use a llava-hf checkpoint")

    def frame(prompt: str) -> tuple[list[int], list[int]]:
        """'<system> USER: <image>\n<prompt> ASSISTANT:', each side of the image tokenised on its own
        as LLaVA's tokenizer_image_token does; the answer then '</s>' follow."""
        bos = [codec.bos_id] if codec.bos_id is not None else []
        return [*bos, *codec.encode(f"{VICUNA_V1_SYSTEM} USER: ")], codec.encode(f"\n{prompt} ASSISTANT:")

    vlm = ProjectedVLM(encoder, projector, model, codec, frame, LLAVA_PROMPTS, name)
    vlm.sha256 = _weights_digest(path)
    vlm.pad_colour = tuple(int(m * 255) for m in encoder.mean.flatten().tolist())  # CLIP mean: (122, 116, 104)
    return vlm


@register_vlm("llava-1.5-7b", "paper", "LLaVA-1.5-7B (hf llava-hf/llava-1.5-7b-hf), encoder swapped the RobustVLM "
              "way: 224 px, 256 tokens")
def _llava_15_7b(encoder: nn.Module, device: str, name: str) -> ProjectedVLM:
    return load_llava(encoder, "llava-hf/llava-1.5-7b-hf", device, name)
