"""The paper zoo: the ViT-L/14 encoders the FARE and Sim-CLIP papers compare, and the
base-size FARE/TeCoA models, with their real sources (docs/protocol.md, "Checkpoints")."""
from __future__ import annotations

from bench.encoders.load import EncoderSpec
from benchutil.registry import Registry

OPENAI_L14 = "open_clip:ViT-L-14/openai"


def paper_zoo() -> Registry[EncoderSpec]:
    zoo: Registry[EncoderSpec] = Registry("encoder")
    zoo.add("clip", EncoderSpec("ViT-L-14", OPENAI_L14, quick_gelu=True),
            "OpenAI CLIP ViT-L/14 (Radford et al. 2021) via open_clip 'openai'")
    for method, paper in (("tecoa", "TeCoA (Mao et al. 2023)"), ("fare", "FARE (Schlarmann et al. 2024)")):
        for eps in (2, 4):
            repo = f"chs20/{method}{eps}-clip"
            # These are OpenAI ViT-L/14 fine-tunes: QuickGELU must be forced (their config omits it).
            zoo.add(f"{method}-{eps}", EncoderSpec(f"hf-hub:{repo}", f"hf-hub:{repo}", quick_gelu=True),
                    f"{paper}, eps {eps}/255, ViT-L/14; hf-hub:{repo}",
                    aliases=(method,) if eps == 4 else ())
    for eps in (2, 4):
        zoo.add(f"sim-clip-{eps}",
                EncoderSpec("ViT-L-14", OPENAI_L14, vision=f"hf-file:hossainzarif19/SimCLIP/simclip{eps}.pt",
                            quick_gelu=True),
                f"Sim-CLIP (Hossain & Imteaj 2024), eps {eps}/255; hf hossainzarif19/SimCLIP simclip{eps}.pt "
                "into OpenAI ViT-L/14",
                aliases=("sim-clip",) if eps == 4 else ())
    for arch, tag, hub_suffix in (("ViT-B-32", "laion2b_s34b_b79k", "laion2B-s34B-b79K"),
                                  ("ViT-B-16", "laion2b_s34b_b88k", "laion2B-s34B-b88K")):
        short = arch.lower()
        zoo.add(f"clip-{short}", EncoderSpec(arch, f"open_clip:{arch}/{tag}"), f"LAION-2B CLIP {arch} ({tag})")
        for method in ("FARE4", "TeCoA4"):
            repo = f"chs20/{method}-{arch}-{hub_suffix}"
            zoo.add(f"{method.lower()}-{short}", EncoderSpec(f"hf-hub:{repo}", f"hf-hub:{repo}"),
                    f"{method[:-1]} eps 4/255 fine-tune of LAION-2B {arch}; hf-hub:{repo}")
    return zoo
