"""The paper zoo: the ViT-L/14 encoders the FARE and Sim-CLIP papers compare, the base-size models
of RobustVLM's README, and the robust encoders published since (ΔCLIP, LEAF, QT-AFT), each with its
real source and a card saying what it is (docs/paper-suite.md, "The zoo")."""
from __future__ import annotations

from dataclasses import dataclass

from bench.encoders.load import EncoderSpec
from benchutil.registry import Registry

OPENAI_L14 = "open_clip:ViT-L-14/openai"
ROBUSTVLM = "RobustVLM's CLIP_benchmark fork: aa (APGD-CE + APGD-T), 100 steps, 1000 samples per dataset"


@dataclass(frozen=True)
class ModelCard:
    """What a zoo encoder is: shown by `bench list encoders --cards` and on the leaderboard."""

    architecture: str  # "ViT-L/14", "ConvNeXt-B"
    resolution: int  # input pixels per side
    method: str  # how it was made robust (or "CLIP" for a plain one)
    eps: str | None  # the radius it was trained for ("4/255"); None: not adversarially trained, or unknown
    norm: str | None  # "Linf" for the pixel radius; LEAF's text radius is in `method`
    source: str  # where the weights are published
    paper: str
    protocol: str  # how its authors evaluated it


PAPER_CARDS: dict[str, ModelCard] = {}


def _add(zoo: Registry[EncoderSpec], name: str, spec: EncoderSpec, card: ModelCard,
         aliases: tuple[str, ...] = ()) -> None:
    eps = f", eps {card.eps}" if card.eps else ""
    zoo.add(name, spec, f"{card.method} ({card.paper}){eps}, {card.architecture} {card.resolution} px; {card.source}",
            aliases=aliases)
    PAPER_CARDS[name] = card


def paper_zoo() -> Registry[EncoderSpec]:
    zoo: Registry[EncoderSpec] = Registry("encoder")
    _the_2024_papers(zoo)
    _robustvlm_base_models(zoo)
    _delta_clip(zoo)
    _leaf(zoo)
    _qt_aft(zoo)
    return zoo


FARE = "Schlarmann et al., ICML 2024"
TECOA = "Mao et al., ICLR 2023"
SIMCLIP = "Hossain & Imteaj 2024"


def _the_2024_papers(zoo: Registry[EncoderSpec]) -> None:
    _add(zoo, "clip", EncoderSpec("ViT-L-14", OPENAI_L14, quick_gelu=True),
         ModelCard("ViT-L/14", 224, "CLIP", None, None, "open_clip ViT-L-14/openai", "Radford et al. 2021",
                   "zero-shot, clean"))
    for method, paper, label in (("tecoa", TECOA, "TeCoA"), ("fare", FARE, "FARE")):
        for eps in (2, 4):
            repo = f"chs20/{method}{eps}-clip"
            # These are OpenAI ViT-L/14 fine-tunes: QuickGELU must be forced (their config omits it).
            _add(zoo, f"{method}-{eps}", EncoderSpec(f"hf-hub:{repo}", f"hf-hub:{repo}", quick_gelu=True),
                 ModelCard("ViT-L/14", 224, label, f"{eps}/255", "Linf", f"hf-hub:{repo}", paper, ROBUSTVLM),
                 aliases=(method,) if eps == 4 else ())
    for eps in (2, 4):
        _add(zoo, f"sim-clip-{eps}",
             EncoderSpec("ViT-L-14", OPENAI_L14, vision=f"hf-file:hossainzarif19/SimCLIP/simclip{eps}.pt",
                         quick_gelu=True),
             ModelCard("ViT-L/14", 224, "Sim-CLIP", f"{eps}/255", "Linf",
                       f"hf hossainzarif19/SimCLIP simclip{eps}.pt into OpenAI ViT-L/14", SIMCLIP,
                       "the Sim-CLIP scripts: one APGD pass, 500 samples"),
             aliases=("sim-clip",) if eps == 4 else ())


# RobustVLM's README, "Additional Models": plain download links, no published digest. Their
# sha256 could not be computed here (no network): the loader records the downloaded file's in the
# run's provenance; pin it here once known.
NC_CLOUD = "https://nc.mlcloud.uni-tuebingen.de/index.php/s"
VIT_B32_OPENAI = {("tecoa", 1): f"{NC_CLOUD}/LHgi84RskrtYCiX/download/vitb32_tecoa_eps_1.pt",
                  ("fare", 1): f"{NC_CLOUD}/cCgQAS8QW9arj9d/download/vitb32_fare_eps_1.pt",
                  ("tecoa", 4): f"{NC_CLOUD}/RiWGQzBrqYNCaDk/download/vitb32_tecoa_eps_4.pt",
                  ("fare", 4): f"{NC_CLOUD}/3nMxBKEwbWnDymT/download/vitb32_fare_eps_4.pt"}


def _robustvlm_base_models(zoo: Registry[EncoderSpec]) -> None:
    for arch, tag, hub_suffix in (("ViT-B-32", "laion2b_s34b_b79k", "laion2B-s34B-b79K"),
                                  ("ViT-B-16", "laion2b_s34b_b88k", "laion2B-s34B-b88K")):
        short, shown = arch.lower(), arch.replace("-32", "/32").replace("-16", "/16")  # ViT-B/32
        _add(zoo, f"clip-{short}", EncoderSpec(arch, f"open_clip:{arch}/{tag}"),
             ModelCard(shown, 224, "CLIP (LAION-2B)", None, None, f"open_clip {arch}/{tag}", "Cherti et al. 2023",
                       "zero-shot, clean"))
        for method in ("FARE4", "TeCoA4"):
            repo = f"chs20/{method}-{arch}-{hub_suffix}"
            _add(zoo, f"{method.lower()}-{short}", EncoderSpec(f"hf-hub:{repo}", f"hf-hub:{repo}"),
                 ModelCard(shown, 224, f"{method[:-1]} of LAION-2B {arch}", "4/255", "Linf", f"hf-hub:{repo}",
                           FARE, "RobustVLM README 'Additional Models': average zero-shot accuracy"))
    for method in ("FARE4", "TeCoA4"):
        repo = f"chs20/{method}-convnext_base_w-laion2B-s13B-b82K-augreg"
        _add(zoo, f"{method.lower()}-convnext-b", EncoderSpec(f"hf-hub:{repo}", f"hf-hub:{repo}"),
             ModelCard("ConvNeXt-B (w)", 256, f"{method[:-1]} of LAION-2B ConvNeXt-B", "4/255", "Linf",
                       f"hf-hub:{repo}", FARE, "RobustVLM README 'Additional Models': average zero-shot accuracy"))
    for (method, eps), url in VIT_B32_OPENAI.items():
        _add(zoo, f"{method}{eps}-vit-b-32-openai",
             EncoderSpec("ViT-B-32", "open_clip:ViT-B-32/openai", vision=f"url:{url}", quick_gelu=True),
             ModelCard("ViT-B/32", 224, f"{'TeCoA' if method == 'tecoa' else 'FARE'} of OpenAI ViT-B/32",
                       f"{eps}/255", "Linf", url, FARE,
                       "RobustVLM README 'Additional Models': average zero-shot accuracy"))


DELTA_CLIP = "Wang, Xie, Bartoldson, Kailkhura 2025, arXiv 2501.09446 (Double Visual Defense)"
DELTA_PROTOCOL = ("RobustVLM's CLIP_benchmark fork (Double_Visual_Defense CLIP_benchmark/scripts/"
                  "dvd_clip_h14_hf_adv.sh): aa, eps 4/255, 1000 samples, batch size 8")


def _delta_clip(zoo: Registry[EncoderSpec]) -> None:
    """ΔCLIP: CLIP adversarially pre-trained (not fine-tuned), in open_clip format on the hub. The
    pre-training radius is stated in the paper only (not in its repository)."""
    for name, arch, size in (("delta-clip-l14-224", "ViT-L/14", 224), ("delta-clip-l14-336", "ViT-L/14", 336),
                             ("delta-clip-h14-336", "ViT-H/14", 336)):
        repo = f"zw123/{name.replace('-', '_', 1).replace('-', '_')}"
        _add(zoo, name, EncoderSpec(f"hf-hub:{repo}", f"hf-hub:{repo}"),
             ModelCard(arch, size, "ΔCLIP: adversarial pre-training", None, "Linf", f"hf-hub:{repo}", DELTA_CLIP,
                       DELTA_PROTOCOL))


LEAF = "Abad Rocamora, Schlarmann, Singh, Wu, Hein, Cevher, NeurIPS 2025 (arXiv 2506.03355)"
LEAF_PROTOCOL = ("LEAF's eval_zero_shot_text.py (AG-News, 1000 sentences, charmer at Levenshtein k) and "
                 "eval_retrieval.py (COCO, 1000 samples); images as RobustVLM's CLIP_benchmark")
# LEAF's README: each size takes its base model's processor (these folders have none).
LEAF_PROCESSORS = {"L": None, "H": "hf-clip:laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
                   "g": "hf-clip:laion/CLIP-ViT-g-14-laion2B-s12B-b42K"}


def _leaf(zoo: Registry[EncoderSpec]) -> None:
    """LEAF: FARE² image encoders with robust text encoders, as transformers CLIPModel folders."""
    for repo_name, size, text in (("CLIP-ViT-L-FARE2", "L", None), ("OpenCLIP-ViT-H-FARE2", "H", None),
                                  ("OpenCLIP-ViT-g-FARE2", "g", None),
                                  ("CLIP-ViT-L-rho50-k1-constrained-FARE2", "L", "rho 50, k 1, constrained"),
                                  ("CLIP-ViT-L-rho20-k1-constrained-FARE2", "L", "rho 20, k 1, constrained"),
                                  ("OpenCLIP-ViT-H-rho50-k1-constrained-FARE2", "H", "rho 50, k 1, constrained")):
        source = f"hf-clip:LEAF-CLIP/{repo_name}"
        name = "leaf-" + repo_name.removeprefix("OpenCLIP-").removeprefix("CLIP-").lower()
        method = (f"FARE² image encoder + LEAF text encoder ({text})" if text
                  else "FARE² image encoder (the base of LEAF's text fine-tunes)")
        _add(zoo, name, EncoderSpec(source, source, processor_base=LEAF_PROCESSORS[size]),
             ModelCard(f"ViT-{size}/14", 224, method, "2/255", "Linf", source, LEAF, LEAF_PROTOCOL))


QT_AFT = "Waseda, Sugawara, Echizen, ACM MM 2025 (arXiv 2507.16257)"


def _qt_aft(zoo: Registry[EncoderSpec]) -> None:
    """QT-AFT (quality-text-guided adversarial fine-tuning): a training dict on the hub
    (futakw/clip-qt-aft) whose vision_encoder_state_dict goes into the OpenAI model's tower."""
    for arch, shown in (("ViT-B-16", "ViT-B/16"), ("ViT-L-14", "ViT-L/14")):
        file = f"hf-file:futakw/clip-qt-aft/CLIP-{arch}_QTAFT_eps4.pt#vision_encoder_state_dict"
        _add(zoo, f"qt-aft-{arch.lower()}",
             EncoderSpec(arch, f"open_clip:{arch}/openai", vision=file, quick_gelu=True),
             ModelCard(shown, 224, "QT-AFT", "4/255", "Linf", file, QT_AFT, ROBUSTVLM))
