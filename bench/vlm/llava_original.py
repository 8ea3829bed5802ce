"""LLaVA checkpoints in the original format (haotian-liu/LLaVA), turned in memory into the parts
ProjectedVLM runs: a transformers LlamaForCausalLM and LLaVA's projector.

The two layouts LLaVA's `load_pretrained_model` (llava/model/builder.py) reads, as facts of its format:
* merged: config.json of a LlavaLlamaForCausalLM (model_type `llava_llama` or `llava`, top-level
  `mm_hidden_size`, `mm_projector_type`, ...) and weights under Llama's own keys plus
  `model.mm_projector.*`, and `model.vision_tower.vision_tower.*` where the training unfroze the
  tower (config `unfreeze_mm_vision_tower`; Double Visual Defense's Open-LLaVA-NeXT trains so, its
  open_clip `.visual` saved there): that tuned tower goes into a copy of the bench's encoder
  (load_llava), as the builder runs it; without that flag the builder reloads the pretrained tower;
* LoRA: that config.json, adapter_config.json + adapter_model.{safetensors,bin} (peft) and
  non_lora_trainables.bin (the projector, keys under `base_model.model.`) over a base Llama
  (`model_base`, e.g. lmsys/vicuna-7b-v1.5); the builder loads the base with the LoRA folder's
  config, loads the non-LoRA weights, then merges the adapter with peft's merge_and_unload, as here.
"""
from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.encoders.weights import read_state_dict
from benchutil.errors import BenchError

ADAPTER_CONFIG = "adapter_config.json"
NON_LORA = "non_lora_trainables.bin"
PROJECTOR_PREFIX = "model.mm_projector."
# Open-LLaVA-NeXT's open_clip tower (clip_encoder_open_clip.py CLIPVisionTower.vision_tower = the
# open_clip model's .visual); haotian-liu/LLaVA's own tower is a transformers CLIPVisionModel
# (`vision_model.*` below this prefix), which no open_clip encoder can take.
TOWER_PREFIX = "model.vision_tower.vision_tower."
MLP_GELU = re.compile(r"^mlp(\d+)x_gelu$")  # LLaVA's projector names: linear, mlp2x_gelu (LLaVA-1.5), ...
# Keys of the LLaVA config that describe the multimodal side, not the Llama inside it.
LLAVA_ONLY_KEYS = ("model_type", "architectures", "_name_or_path", "transformers_version", "image_aspect_ratio",
                   "image_grid_pinpoints", "tokenizer_model_max_length", "tokenizer_padding_side",
                   "tune_mm_mlp_adapter", "freeze_mm_mlp_adapter", "use_mm_proj")


@dataclass
class LlavaParts:
    """A LLaVA checkpoint's language model, projector and tokenizer, ready for ProjectedVLM."""

    lm: nn.Module  # LlamaForCausalLM, LoRA merged (llava-hf: LlavaForConditionalGeneration)
    projector: nn.Module  # LLaVA's mm_projector, its first Linear takes mm_hidden_size
    tokenizer_dir: Path  # the checkpoint folder (merged) or the base's (LoRA), as the builder reads it
    pads_to_square: bool  # image_aspect_ratio "pad": LLaVA-1.5 pads with the CLIP mean colour
    weight_dirs: tuple[Path, ...]  # the folders whose weight files make the VLM's identity (sha256)
    vision_tower: dict[str, torch.Tensor] | None = None  # a tuned open_clip .visual the checkpoint carries


def read_config(path: Path) -> dict[str, Any] | None:
    file = path / "config.json"
    if not file.is_file():
        return None
    try:
        config = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BenchError(f"{file} is not JSON ({err}); re-download the checkpoint") from None
    return config if isinstance(config, dict) else None


def is_lora(path: Path) -> bool:
    return (path / ADAPTER_CONFIG).is_file()


def is_original_format(path: Path) -> bool:
    """A LoRA folder (adapter_config.json), or a config with LLaVA's top-level mm_* keys; llava-hf
    configs nest the language model under text_config instead."""
    if is_lora(path):
        return True
    config = read_config(path) or {}
    return "text_config" not in config and ("mm_hidden_size" in config or config.get("model_type") == "llava_llama")


def lora_base(path: Path) -> str | None:
    """The base model the adapter was trained on, as peft recorded it (None for a merged checkpoint)."""
    file = path / ADAPTER_CONFIG
    if not file.is_file():
        return None
    try:
        base = json.loads(file.read_text()).get("base_model_name_or_path")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise BenchError(f"{file} is not a peft adapter config; re-download the checkpoint") from None
    return base or None


def _llava_config(path: Path) -> dict[str, Any]:
    config = read_config(path)
    if config is None or "mm_hidden_size" not in config:
        raise BenchError(f"{path} has no LLaVA config.json (with mm_hidden_size, mm_projector_type); pass the folder "
                         f"LLaVA's training wrote")
    _check_supported(config, path)
    return config


def _check_supported(config: dict[str, Any], path: Path) -> None:
    """ProjectedVLM feeds the projector the penultimate block's patch tokens, one flat grid per
    image, with no start/end tokens: LLaVA-1.5's settings. Anything else would be run wrong."""
    settings = {"mm_vision_select_layer": (config.get("mm_vision_select_layer", -2), (-2,)),
             "mm_vision_select_feature": (config.get("mm_vision_select_feature", "patch"), ("patch",)),
             "mm_use_im_start_end": (config.get("mm_use_im_start_end", False), (False,)),
             "mm_patch_merge_type": (config.get("mm_patch_merge_type", "flat"), ("flat",)),
             "image_aspect_ratio": (config.get("image_aspect_ratio", "square"), ("pad", "square", None))}
    for key, (value, supported) in settings.items():
        if value not in supported:
            raise BenchError(f"{path}/config.json has {key}={value!r}; the bench runs LLaVA-1.5's settings only "
                             f"({key} {' or '.join(map(repr, supported))}; LLaVA-1.6 is not supported)")


def build_projector(config: dict[str, Any]) -> nn.Module:
    """LLaVA's mm_projector (llava/model/multimodal_projector/builder.py): Linear, or depth-N MLP with GELU."""
    kind = config.get("mm_projector_type", "linear")
    vision, hidden = int(config["mm_hidden_size"]), int(config["hidden_size"])
    if kind == "linear":
        return nn.Linear(vision, hidden)
    match = MLP_GELU.match(kind)
    if match is None:
        raise BenchError(f"mm_projector_type {kind!r} is not supported; the bench builds 'linear' and 'mlpNx_gelu'")
    layers: list[nn.Module] = [nn.Linear(vision, hidden)]
    for _ in range(1, int(match.group(1))):
        layers += [nn.GELU(), nn.Linear(hidden, hidden)]
    return nn.Sequential(*layers)


def llama_config(config: dict[str, Any]) -> Any:
    """The Llama inside a LLaVA config (LlavaConfig subclasses LlamaConfig; the mm_* keys are LLaVA's)."""
    from transformers import LlamaConfig

    text = {k: v for k, v in config.items() if k not in LLAVA_ONLY_KEYS and not k.startswith("mm_")}
    return LlamaConfig.from_dict(text)


def _weight_files(path: Path) -> list[Path]:
    files = sorted(path.glob("*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))
    return [f for f in files if not f.name.startswith("adapter_model")]


def _shards_with(files: list[Path], path: Path, prefix: str) -> list[Path]:
    """The shards the index names for keys under `prefix` (a 7B .bin shard is ~10 GB: read only those)."""
    for index in path.glob("*.index.json"):
        try:
            weight_map = json.loads(index.read_text()).get("weight_map", {})
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            continue  # transformers' own loading names a broken index
        named = {shard for key, shard in weight_map.items() if key.startswith(prefix)}
        return [f for f in files if f.name in named]
    return files


def prefixed_state(files: list[Path], path: Path, prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix` of the checkpoint's weight files, prefix removed."""
    state: dict[str, torch.Tensor] = {}
    for file in _shards_with(files, path, prefix):
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), "pt") as f:  # read only those tensors of each shard
                state |= {k.removeprefix(prefix): f.get_tensor(k) for k in f.keys()  # noqa: SIM118
                          if k.startswith(prefix)}
        else:
            state |= {k.removeprefix(prefix): v for k, v in read_state_dict(file).items() if k.startswith(prefix)}
    return state


def _projector_state(files: list[Path], path: Path) -> dict[str, torch.Tensor]:
    state = prefixed_state(files, path, PROJECTOR_PREFIX)
    if not state:
        raise BenchError(f"the weights in {path} have no {PROJECTOR_PREFIX}* tensors; pass a LLaVA checkpoint "
                         f"after its instruction tuning, not a projector-only pretraining stage")
    return state


def _load_projector(config: dict[str, Any], state: dict[str, torch.Tensor], path: Path,
                    dtype: torch.dtype) -> nn.Module:
    projector = build_projector(config)
    try:
        projector.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise BenchError(f"the projector weights in {path} do not fit mm_projector_type "
                         f"{config.get('mm_projector_type')!r} ({first}); check config.json") from None
    return projector.to(dtype).eval()


def _load_llama(weights: Path, config: dict[str, Any], dtype: torch.dtype) -> nn.Module:
    """LlamaForCausalLM from `weights` with the LLaVA config's Llama; the checkpoint's
    mm_projector / vision_tower tensors are left out (transformers reports them unexpected)."""
    from transformers import LlamaForCausalLM
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # the unexpected-key report lists the projector and vision tower we read ourselves
    try:
        return LlamaForCausalLM.from_pretrained(str(weights), config=llama_config(config), dtype=dtype)
    except OSError as err:
        raise BenchError(f"cannot load the Llama weights in {weights} ({str(err).splitlines()[0]}); pass a folder "
                         f"with model.safetensors or pytorch_model.bin") from None
    finally:
        logging.set_verbosity(verbosity)


def load_merged(path: Path, dtype: torch.dtype) -> LlavaParts:
    config = _llava_config(path)
    files = _weight_files(path)
    if not files:
        raise BenchError(f"{path} has no weights (*.safetensors or pytorch_model*.bin); re-download the checkpoint")
    projector = _load_projector(config, _projector_state(files, path), path, dtype)
    return LlavaParts(_load_llama(path, config, dtype), projector, path, _pads(config), (path,),
                      _tuned_tower(prefixed_state(files, path, TOWER_PREFIX), path, config))


def _tuned_tower(state: dict[str, torch.Tensor], path: Path, config: dict[str, Any]) -> dict[str, torch.Tensor] | None:
    """The checkpoint's own tuned tower, where the builder would run it: only a config with
    `unfreeze_mm_vision_tower` builds its tower before the weights load over it; otherwise the
    builder's `vision_tower.load_model()` replaces any tower weights by the pretrained ones."""
    if not state or not config.get("unfreeze_mm_vision_tower", False):
        return None
    if any(k.startswith("vision_model.") for k in state):
        raise BenchError(f"{path} carries a fine-tuned transformers CLIP vision tower, which this loader cannot put "
                         "into an open_clip encoder; evaluating it without that tower would not be this model")
    return state


def non_lora_weights(path: Path) -> dict[str, torch.Tensor]:
    """non_lora_trainables.bin with its keys as the builder strips them: `base_model.` off, then
    one `model.` off where the keys start `model.model.`."""
    file = path / NON_LORA
    if not file.is_file():
        raise BenchError(f"LoRA checkpoint {path} has no {NON_LORA} (LLaVA's projector weights); pass the whole "
                         f"folder LLaVA's LoRA training wrote")
    state = {k.removeprefix("base_model."): v for k, v in read_state_dict(file).items()}
    if any(k.startswith("model.model.") for k in state):
        state = {k.removeprefix("model."): v for k, v in state.items()}
    return state


def load_lora(path: Path, base: Path, dtype: torch.dtype) -> LlavaParts:
    """The base Llama with the LoRA folder's config, its non-LoRA weights, the adapter merged in."""
    try:
        from peft import PeftModel
    except ImportError:
        raise BenchError("LoRA LLaVA checkpoints need peft: pip install 'robust-vlm-bench[llava]'") from None
    config = _llava_config(path)
    non_lora = non_lora_weights(path)
    projector_state = {k.removeprefix(PROJECTOR_PREFIX): v for k, v in non_lora.items()
                       if k.startswith(PROJECTOR_PREFIX)}
    if not projector_state:
        raise BenchError(f"{path / NON_LORA} has no {PROJECTOR_PREFIX}* tensors; pass LLaVA's LoRA output folder")
    projector = _load_projector(config, projector_state, path, dtype)
    lm = _load_llama(base, config, dtype)
    # Other non-LoRA weights the training unfroze (embeddings, lm_head) replace the base's; a tuned
    # vision tower is returned for the encoder (load_llava).
    language = {k: v for k, v in non_lora.items() if k in lm.state_dict()}
    lm.load_state_dict(language, strict=False)
    try:
        with warnings.catch_warnings():  # peft calls an API transformers deprecated; nothing for the user to do
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
            lm = PeftModel.from_pretrained(lm, str(path)).merge_and_unload()
    except (ValueError, KeyError, RuntimeError) as err:
        raise BenchError(f"cannot apply the LoRA adapter in {path} to the base {base} ({str(err).splitlines()[0]}); "
                         f"pass the base it was trained on as llava:{path}@BASE") from None
    tower = {k.removeprefix(TOWER_PREFIX): v for k, v in non_lora.items() if k.startswith(TOWER_PREFIX)}
    return LlavaParts(lm.eval(), projector, base, _pads(config), (path, base), _tuned_tower(tower, path, config))


def _pads(config: dict[str, Any]) -> bool:
    return config.get("image_aspect_ratio") == "pad"
