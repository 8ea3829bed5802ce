"""load_encoder: every way of naming weights resolves here to one Encoder with provenance.

Sources (the `source` strings of EncoderSpec):
  open_clip:ARCH/TAG    an open_clip pretrained tag (ViT-B-32/laion2b_s34b_b79k, ViT-L-14-336/openai)
  hf-hub:ORG/NAME       a full open_clip model on the Hugging Face hub (chs20/fare4-clip; ConvNeXt
                        towers too: chs20/FARE4-convnext_base_w-laion2B-s13B-b82K-augreg)
  hf-file:ORG/NAME/FILE a single file on the hub (hossainzarif19/SimCLIP/simclip4.pt)
  hf-clip:ORG/NAME      a transformers CLIPModel on the hub (LEAF-CLIP/CLIP-ViT-L-FARE2); a local
                        save_pretrained folder (config.json with model_type 'clip') is one too.
                        Preprocessing and tokenizer: the folder's, else EncoderSpec.processor_base's
                        (default 'openai': OpenAI CLIP's mean/std and BPE) -- bench/encoders/hf_clip.py
  url:https://HOST/FILE a file downloaded once into $BENCH_HOME/downloads; EncoderSpec.sha256 pins
                        its sha256 (checked after the download and on every use)
  a local path          .safetensors or a .pt/.pth/.bin state dict (full model, or a vision
                        tower loaded into .visual like RobustVLM / Sim-CLIP checkpoints)
  tiny:NAME             a file shipped in bench/tiny/weights (the tiny zoo: tiny:clip)
  random                random initialisation (tests, smoke runs)
A file source followed by #KEY names the state dict under KEY of a training dict (QT-AFT:
hf-file:futakw/clip-qt-aft/CLIP-ViT-B-16_QTAFT_eps4.pt#vision_encoder_state_dict, x.pt#KEY).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import open_clip
import torch
from torch import Tensor, nn

from bench.encoders.base import Encoder, Provenance
from bench.encoders.download import URL_PREFIX, check_pin, fetch_url
from bench.encoders.hf_clip import (
    HF_CLIP_PREFIX,
    build_hf_clip,
    is_hf_clip_folder,
    model_folder,
)
from bench.encoders.sources import (
    check_source_form,
    hf_clip_repo,
    hf_file_parts,
    hf_hub_repo,
    open_clip_parts,
    tiny_name,
)
from bench.encoders.weights import (
    hub_file,
    read_state_dict,
    safetensors_metadata,
    split_key,
    state_sha256,
    weights_sha256,
)
from benchutil.errors import BenchError
from benchutil.paths import user_path
from benchutil.schema import Schema, read_json

# The project's own open_clip architectures (tiny models for tests and the tiny suite).
open_clip.add_model_config(Path(__file__).resolve().parent.parent / "model_configs")

# What other packages register with the loader, so that it never reaches into them: the tiny
# suite registers its shipped weights folder (sources 'tiny:NAME') and its word-level tokenizer for
# the 'tiny-clip' architecture (bench/tiny/__init__.py).
SHIPPED: dict[str, Path] = {}  # source prefix ('tiny:') -> the folder its NAME.safetensors files are in
TOKENIZERS: dict[str, Callable[[], Callable[[list[str]], Tensor]]] = {}  # architecture -> tokenizer factory


def register_shipped_weights(prefix: str, folder: Path) -> None:
    SHIPPED[prefix] = folder


def register_tokenizer(architecture: str, factory: Callable[[], Callable[[list[str]], Tensor]]) -> None:
    TOKENIZERS[architecture] = factory


def shipped_file(source: str, suffix: str = ".safetensors") -> Path:
    """'tiny:NAME' -> the registered folder's NAME<suffix> (NAME is checked: never a path out of it)."""
    prefix = source.split(":", 1)[0] + ":"
    if prefix not in SHIPPED:
        raise BenchError(f"no weights are registered for {prefix!r} sources; import the package that ships them "
                         "(bench.tiny for tiny:NAME)")
    return SHIPPED[prefix] / f"{tiny_name(source)}{suffix}"
DEFAULT_MEAN = open_clip.OPENAI_DATASET_MEAN
DEFAULT_STD = open_clip.OPENAI_DATASET_STD


@dataclass(frozen=True)
class EncoderSpec:
    architecture: str  # open_clip model config name (hf-clip:NAME_OR_PATH for transformers CLIPModels)
    base: str  # source of the full model (both towers)
    vision: str | None = None  # optional source of a vision-tower state dict replacing .visual
    quick_gelu: bool = False
    # The sha256 (hex) of the file a url: source downloads; with url: base and vision, both, '+'-joined
    sha256: str | None = None
    # hf-clip only: where preprocessing and tokenizer come from when the model folder has none
    # ('openai' when None; or hf-clip:ORG/NAME, or a folder): LEAF's README names openai/clip-vit-large-patch14
    processor_base: str | None = None


def _fetch(source: str, pin: str | None = None) -> Path:
    """Local path of a weight file named by a source string without #KEY (downloads via the hub
    cache; url: sources into the bench cache, checked against `pin`)."""
    if source.startswith(URL_PREFIX):
        return fetch_url(source, pin)[0]
    if source.startswith("hf-file:"):
        return hub_file(*hf_file_parts(source))
    if source.startswith("hf-hub:"):
        return _hub_model_weights(hf_hub_repo(source))
    if source.startswith("open_clip:"):
        arch, tag = _split_open_clip(source)
        cfg = open_clip.get_pretrained_cfg(arch, tag)
        hub = cfg.get("hf_hub", "")
        if not hub:
            raise BenchError(f"open_clip weights {arch}/{tag} have no Hugging Face hub copy; download them "
                             f"yourself and pass the file path")
        repo, filename = hub.rstrip("/").rsplit("/", 1) if not hub.endswith("/") else (hub.rstrip("/"), "")
        return hub_file(repo, filename) if filename else _hub_model_weights(repo)
    if source.startswith("tiny:"):
        path = shipped_file(source)
        if not path.is_file():
            raise BenchError(f"no shipped tiny weights {source!r} ({path}); reinstall the package")
        return path
    return _existing_file(source)


def _existing_file(source: str) -> Path:
    """A local checkpoint path, expanded ('~'), that names a file."""
    path = user_path(source, "checkpoint")
    if path.is_dir():
        raise BenchError(f"checkpoint {path} is a folder; give the weight file in it (.safetensors, .pt, .pth, "
                         ".bin), or a transformers CLIPModel folder (config.json with model_type 'clip')")
    if not path.is_file():
        raise BenchError(f"checkpoint {path} does not exist; check the path (or bench list encoders for zoo names)")
    return path


def _hub_model_weights(repo: str) -> Path:
    """open_clip's files on the hub: prefer safetensors when it is already cached."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo, "open_clip_model.safetensors")
    if isinstance(cached, str):
        return Path(cached)
    return hub_file(repo, "open_clip_pytorch_model.bin")


def _split_open_clip(source: str) -> tuple[str, str]:
    arch, tag = open_clip_parts(source)
    if arch not in open_clip.list_models():
        raise BenchError(f"unknown open_clip architecture {arch!r} in {source!r} (open_clip.list_models())")
    if tag not in open_clip.list_pretrained_tags_by_model(arch):
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)[:8])
        raise BenchError(f"open_clip has no pretrained tag {tag!r} for {arch}; known: {tags}")
    return arch, tag


def is_hf_clip(spec: EncoderSpec) -> bool:
    """A spec of a transformers CLIPModel (hf-clip:ORG/NAME or a local folder), built by hf_clip."""
    return spec.architecture.startswith(HF_CLIP_PREFIX) or spec.base.startswith(HF_CLIP_PREFIX)


def spec_for_source(source: str, architecture: str | None = None) -> EncoderSpec:
    """An EncoderSpec for a name that is not in a zoo: a source string or a local file."""
    check_source_form(source)
    if source.startswith("open_clip:"):
        arch, tag = _split_open_clip(source)
        quick = bool(open_clip.get_pretrained_cfg(arch, tag).get("quick_gelu", False))
        return EncoderSpec(arch, source, quick_gelu=quick)
    if source.startswith("hf-hub:"):
        hub_file(hf_hub_repo(source), "open_clip_config.json")  # fail fast when unavailable
        return EncoderSpec(architecture=architecture or source, base=source)
    folder = user_path(source, "checkpoint")
    if source.startswith(HF_CLIP_PREFIX) or is_hf_clip_folder(folder):
        if architecture is not None:
            raise BenchError(f"--arch and --base do not apply to {source}: a transformers CLIPModel carries both "
                             "towers and its config.json says their architecture; drop them")
        if source.startswith(HF_CLIP_PREFIX):
            model_folder(source)  # fail fast when unavailable (and cache it for the build)
            return EncoderSpec(f"{HF_CLIP_PREFIX}{hf_clip_repo(source)}", source)
        return EncoderSpec(f"{HF_CLIP_PREFIX}{folder}", str(folder))
    file, key = split_key(source)
    prefixed = file.startswith(("tiny:", "hf-file:", URL_PREFIX))
    path = _fetch(file)
    # A prefixed source stays as written: provenance then names it the same on every machine.
    source = source if prefixed else str(path) + (f"#{key}" if key is not None else "")
    meta = {**_card_next_to(path), **safetensors_metadata(path)}
    arch = architecture or meta.get("architecture")
    if not arch:
        raise BenchError(f"checkpoint {path} does not say which architecture it is: save it with safetensors "
                         "metadata 'architecture' or a card JSON next to it, or pass --arch")
    quick = str(meta.get("quick_gelu", "false")).lower() == "true"
    base = meta.get("base")
    if base and base != source:  # a vision tower fine-tuned from `base`
        check_source_form(base)
        return EncoderSpec(arch, base, vision=source, quick_gelu=quick)
    return EncoderSpec(arch, source, quick_gelu=quick)


# The JSON card `bench train` writes beside a checkpoint (and RobustVLM-style cards people write by
# hand): the loader reads its architecture and base; bench site shows the training recipe.
CARD = Schema("encoder card", "fix or remove it", optional={"architecture": str, "base": (str, dict), "method": str,
                                                            "eps_label": str, "command": str, "recipe": dict})


def read_card(card: Path) -> dict[str, Any]:
    """A card, checked: a missing file, bad JSON or UTF-8, or the wrong shape is one line."""
    return read_json(card, CARD)


def _card_next_to(path: Path) -> dict[str, str]:
    for card in (path.with_suffix(".json"), path.parent / "card.json"):
        if card.is_file():
            data = read_card(card)
            return {k: str(v) for k, v in data.items() if isinstance(v, (str, bool, int, float))}
    return {}


def _load_into(module: nn.Module, state: dict[str, Tensor], path: str, what: str) -> None:
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        details = []
        if wrong:
            k = wrong[0]
            details.append(f"{len(wrong)} shape mismatches (e.g. {k}: file {tuple(state[k].shape)} "
                           f"vs model {tuple(own[k].shape)})")
        if missing:
            details.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        raise BenchError(f"checkpoint {path} does not fit {what}: {'; '.join(details)}; check the architecture")
    module.load_state_dict(state, strict=True)


def _pins(spec: EncoderSpec) -> dict[str, str | None]:
    """Each url: source of the spec -> the sha256 its file must have (spec.sha256, '+'-joined in
    base, vision order), or None where the spec pins nothing."""
    urls = [s for s in (spec.base, spec.vision) if s is not None and s.startswith(URL_PREFIX)]
    if spec.sha256 is None:
        return {url: None for url in urls}
    pins = spec.sha256.split("+")
    if len(pins) != len(urls):
        raise BenchError(f"the encoder pins {len(pins)} sha256 for {len(urls)} url: sources; sha256 pins the files "
                         "of url: sources, one hex digest each ('+'-joined for base and vision)")
    return {url: check_pin(pin) for url, pin in zip(urls, pins)}


@dataclass(frozen=True)
class _Weights:
    path: Path
    key: str | None  # the entry of a training dict (SOURCE#KEY)
    file_sha256: str | None  # of a url: download


def _weights(source: str, pins: dict[str, str | None]) -> _Weights:
    """A source's local file, its #KEY, and (url: sources) the downloaded file's sha256."""
    file, key = split_key(source)
    if file.startswith(URL_PREFIX):
        path, digest = fetch_url(file, pins.get(source))
        return _Weights(path, key, digest)
    return _Weights(_fetch(file), key, None)


def _identity(weights: _Weights, state: dict[str, Tensor]) -> str:
    """weights_sha256 of the file, or of the state dict under its key (read already: no second read)."""
    return weights_sha256(weights.path) if weights.key is None else state_sha256(state)


def build_encoder(spec: EncoderSpec, name: str, device: str | torch.device = "cpu") -> Encoder:
    """Create the open_clip model of spec.architecture and load the weights the spec names
    (a transformers CLIPModel for hf-clip specs)."""
    if is_hf_clip(spec):
        if spec.sha256 is not None:
            raise BenchError("sha256 pins url: files; an hf-clip model comes from the hub or a folder")
        base = spec.base if spec.base.startswith(HF_CLIP_PREFIX) else str(user_path(spec.base, "checkpoint"))
        return build_hf_clip(base, spec.processor_base, name, spec.vision).to(device).eval()
    if spec.processor_base is not None:
        raise BenchError(f"processor_base applies to hf-clip models; {spec.architecture} is an open_clip model "
                         "(its config gives the preprocessing)")
    hub_config = spec.architecture.startswith("hf-hub:")
    if not hub_config and spec.architecture not in open_clip.list_models():
        raise BenchError(f"unknown open_clip architecture {spec.architecture!r}; see open_clip.list_models()")
    if hub_config:  # the config comes from the hub (cached by spec_for_source / _fetch)
        hub_file(hf_hub_repo(spec.architecture), "open_clip_config.json")
    # Fetch before building: a missing download fails in a second, not after a ViT-L is built.
    pins = _pins(spec)
    base_weights = None if spec.base == "random" else _weights(spec.base, pins)
    vision_weights = None if spec.vision is None else _weights(spec.vision, pins)
    with _quiet_random_init():  # the weights are loaded just below: open_clip's warning would be false
        model = open_clip.create_model(spec.architecture, pretrained=None, load_weights=False,
                                       force_quick_gelu=spec.quick_gelu)
    hashes = []
    if base_weights is not None:
        base_path = base_weights.path
        state = read_state_dict(base_path, base_weights.key)
        if not any(k.startswith(("visual.", "module.visual.")) for k in state):
            # FARE / TeCoA / Sim-CLIP publish the vision tower alone: its text tower would stay random.
            raise BenchError(f"checkpoint {base_path} holds only a vision tower and names no base model for the text "
                             "tower; pass --base NAME (the model it was fine-tuned from, e.g. --base clip or "
                             "--base open_clip:ViT-L-14/openai)")
        _load_into(model, state, str(base_path), spec.architecture)
        hashes.append(_identity(base_weights, state))
    if vision_weights is not None:
        vision_path = vision_weights.path
        state = read_state_dict(vision_path, vision_weights.key)
        hashes.append(_identity(vision_weights, state))
        state = {k.removeprefix("module."): v for k, v in state.items()}
        if any(k.startswith("visual.") for k in state):  # a full model file: take its vision tower
            state = {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")}
        _load_into(model.visual, state, str(vision_path), f"the vision tower of {spec.architecture}")
    preprocess = model.visual.preprocess_cfg if hasattr(model.visual, "preprocess_cfg") else {}
    size = model.visual.image_size
    image_size = size[0] if isinstance(size, (tuple, list)) else int(size)
    downloads = [w.file_sha256 for w in (base_weights, vision_weights) if w is not None and w.file_sha256]
    provenance = Provenance(name=name, architecture=spec.architecture,
                            source=spec.base if spec.vision is None else f"{spec.base} + {spec.vision}",
                            sha256="+".join(hashes) or "random", quick_gelu=spec.quick_gelu,
                            file_sha256="+".join(downloads))
    encoder = Encoder(model, _tokenizer(spec.architecture), image_size,
                      tuple(preprocess.get("mean", DEFAULT_MEAN)), tuple(preprocess.get("std", DEFAULT_STD)),
                      provenance)
    return encoder.to(device).eval()


class _DropRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()


@contextmanager
def _quiet_random_init() -> Iterator[None]:
    """Silence open_clip's 'Model initialized randomly' (logged on the root logger) while building."""
    root, drop = logging.getLogger(), _DropRandomInitWarning()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def _tokenizer(architecture: str) -> Callable[[list[str]], Tensor]:
    if architecture in TOKENIZERS:  # e.g. the tiny world's word-level vocabulary (bench.tiny)
        return TOKENIZERS[architecture]()
    return open_clip.get_tokenizer(architecture)


def with_architecture(spec: EncoderSpec, architecture: str | None) -> EncoderSpec:
    return spec if architecture is None else replace(spec, architecture=architecture)


def with_base(spec: EncoderSpec, base: EncoderSpec) -> EncoderSpec:
    """A checkpoint's weights on top of `base`: base's full model, the checkpoint's vision tower."""
    if is_hf_clip(spec) or is_hf_clip(base):
        raise BenchError("--base puts a vision tower into an open_clip model; a transformers CLIPModel (hf-clip) "
                         "carries both towers and takes none: drop --base")
    vision = spec.vision or spec.base
    return replace(spec, base=base.base, vision=vision, quick_gelu=spec.quick_gelu or base.quick_gelu)
