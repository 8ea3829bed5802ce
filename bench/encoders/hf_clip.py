"""hf-clip: transformers CLIPModel checkpoints (save_pretrained folders) as Encoders.

LEAF publishes its robust CLIPs this way (hub LEAF-CLIP/CLIP-ViT-L-FARE2): config.json and the
weights of both towers, often without a processor; its README takes the processor of the model it
fine-tuned (openai/clip-vit-large-patch14). So preprocessing and tokenizer come from the folder
when it has them, else from `processor_base`:
  'openai' (the default)   OpenAI CLIP's mean/std and BPE (open_clip's SimpleTokenizer has the
                           vocabulary and merges of OpenAI's CLIPTokenizer)
  hf-clip:ORG/NAME         that hub repository's preprocessor_config.json and tokenizer files
  a folder                 the same files in a local folder
The towers keep transformers' own code; HFClip gives them open_clip's interface (encode_image on
normalised pixels, encode_text on token ids), and Encoder adds [0,1] pixels and provenance.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch
from torch import Tensor, nn

from bench.encoders.base import Encoder, Provenance
from bench.encoders.weights import (
    TRANSFORMERS_WEIGHTS,
    check_readable,
    hub_folder,
    transformers_weight_files,
    weights_sha256,
)
from benchutil.errors import BenchError

HF_CLIP_PREFIX = "hf-clip:"
OPENAI_PROCESSOR = "openai"
PROCESSOR_FILES = ["preprocessor_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                   "special_tokens_map.json"]
MODEL_FILES = ["config.json", *TRANSFORMERS_WEIGHTS, "*.index.json", *PROCESSOR_FILES]


def model_type(folder: Path) -> str | None:
    """config.json's model_type, or None where the folder has no readable config."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config.get("model_type") if isinstance(config, dict) else None


def is_hf_clip_folder(path: Path) -> bool:
    return path.is_dir() and model_type(path) == "clip"


def _has_model(folder: Path) -> bool:
    return (folder / "config.json").is_file() and bool(transformers_weight_files(folder))


def model_folder(base: str) -> Path:
    """The local folder of an hf-clip base: 'hf-clip:ORG/NAME' (downloaded once) or a folder."""
    if base.startswith(HF_CLIP_PREFIX):
        folder = hub_folder(base.removeprefix(HF_CLIP_PREFIX), MODEL_FILES, _has_model)
    else:
        folder = Path(base).expanduser()
    kind = model_type(folder)
    if kind != "clip":
        found = f"model_type {kind!r}" if kind else "no readable config.json"
        raise BenchError(f"{base} is not a transformers CLIPModel folder ({found}); hf-clip loads CLIPModel "
                         "checkpoints (config.json with model_type 'clip')")
    return folder


def _has_processor(folder: Path) -> bool:
    return (folder / "preprocessor_config.json").is_file()


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer.json").is_file() or (folder / "vocab.json").is_file()


def processor_folder(processor_base: str) -> Path | None:
    """Where preprocessing and tokenizer come from when the model folder has none (None: OpenAI's)."""
    if processor_base == OPENAI_PROCESSOR:
        return None
    if processor_base.startswith(HF_CLIP_PREFIX):
        return hub_folder(processor_base.removeprefix(HF_CLIP_PREFIX), PROCESSOR_FILES, _has_processor)
    folder = Path(processor_base).expanduser()
    if not _has_processor(folder):
        raise BenchError(f"processor base {processor_base} has no preprocessor_config.json; give a folder or "
                         f"hf-clip:ORG/NAME with one, or '{OPENAI_PROCESSOR}' for OpenAI CLIP's")
    return folder


def _mean_std(config_file: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
        mean, std = tuple(map(float, config["image_mean"])), tuple(map(float, config["image_std"]))
    except (OSError, ValueError, KeyError, TypeError):
        raise BenchError(f"{config_file} does not give image_mean and image_std (3 numbers each); fix it, or "
                         "remove it to use the processor base's") from None
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise BenchError(f"{config_file}: image_mean and image_std must be 3 numbers each (std > 0)")
    return mean, std


class FolderTokenizer:
    """A transformers tokenizer as open_clip's: texts -> [N, context_length] token ids."""

    def __init__(self, folder: Path, context_length: int) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.context_length = context_length

    def __call__(self, texts: list[str]) -> Tensor:
        # Padding is harmless: CLIP's text tower is causal and pools the first end-of-text token.
        return self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=self.context_length,
                              return_tensors="pt")["input_ids"]


@dataclass(frozen=True)
class Preprocessing:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    tokenizer: Callable[[list[str]], Tensor]


def preprocessing(folder: Path, processor_base: str, context_length: int) -> Preprocessing:
    """The folder's own preprocessing and tokenizer; what it lacks comes from processor_base."""
    base = None if _has_processor(folder) and _has_tokenizer(folder) else processor_folder(processor_base)
    for_pixels = folder if _has_processor(folder) else base
    mean, std = (_mean_std(for_pixels / "preprocessor_config.json") if for_pixels is not None
                 else (tuple(open_clip.OPENAI_DATASET_MEAN), tuple(open_clip.OPENAI_DATASET_STD)))
    for_text = folder if _has_tokenizer(folder) else base if base is not None and _has_tokenizer(base) else None
    tokenizer: Callable[[list[str]], Tensor] = (
        FolderTokenizer(for_text, context_length) if for_text is not None
        else open_clip.tokenizer.SimpleTokenizer(context_length=context_length))
    return Preprocessing(mean, std, tokenizer)


class HFClip(nn.Module):
    """A transformers CLIPModel with open_clip's interface: the projected features of both towers."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    @property
    def visual(self) -> nn.Module:
        return self.model.vision_model

    def encode_image(self, pixels: Tensor) -> Tensor:
        """Normalised pixels -> image features (CLIPModel.get_image_features)."""
        return self.model.visual_projection(self.model.vision_model(pixel_values=pixels).pooler_output)

    def encode_text(self, tokens: Tensor) -> Tensor:
        """Token ids -> text features (CLIPModel.get_text_features)."""
        return self.model.text_projection(self.model.text_model(input_ids=tokens).pooler_output)


def _load_model(folder: Path) -> nn.Module:
    from transformers import CLIPModel
    from transformers.utils import logging as transformers_logging

    bars_were_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # a tqdm bar per load would fill every run's log
    try:  # float32 like every encoder here: runs choose their precision themselves
        model, info = CLIPModel.from_pretrained(str(folder), dtype=torch.float32, output_loading_info=True,
                                                local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise BenchError(f"cannot load {folder} as a transformers CLIPModel: {first[:200]}") from None
    finally:
        if bars_were_on:
            transformers_logging.enable_progress_bar()
    missing = list(info.get("missing_keys", []))
    if missing:  # transformers would leave them random: the numbers would mean nothing
        raise BenchError(f"checkpoint {folder} lacks {len(missing)} weights of its CLIPModel (e.g. {missing[0]}); "
                         "re-save it with save_pretrained")
    return model


def build_hf_clip(base: str, processor_base: str | None, name: str, vision: str | None = None) -> Encoder:
    """An Encoder around the CLIPModel that `base` names (a folder or hf-clip:ORG/NAME)."""
    if vision is not None:
        raise BenchError(f"hf-clip models carry both towers; a separate vision tower ({vision}) cannot replace "
                         "theirs: drop --base, or give an open_clip base")
    folder = model_folder(base)
    files = transformers_weight_files(folder)
    for file in files:  # NaN or pickled code refused before transformers reads them
        check_readable(file)
    model = _load_model(folder)
    config: Any = model.config
    size = config.vision_config.image_size
    prep = preprocessing(folder, processor_base or OPENAI_PROCESSOR, config.text_config.max_position_embeddings)
    where = base.removeprefix(HF_CLIP_PREFIX)
    provenance = Provenance(name=name, architecture=f"{HF_CLIP_PREFIX}{where}", source=base,
                            sha256="+".join(weights_sha256(f) for f in files),
                            quick_gelu=config.vision_config.hidden_act == "quick_gelu")
    image_size = size[0] if isinstance(size, (tuple, list)) else int(size)
    return Encoder(HFClip(model), prep.tokenizer, image_size, prep.mean, prep.std, provenance)
