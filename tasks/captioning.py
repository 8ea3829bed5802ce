"""Image captioning (COCO, Flickr30k, the tiny world): CIDEr under attack.

Untargeted passes follow RobustVLM: one APGD run per ground-truth caption, pushing its
likelihood down; the lowest-scoring output per sample is kept. CIDEr's idf comes from the
references of the evaluated set, so a sample's score depends on which samples are
evaluated but not on the other outputs: per-sample scores are exact for any batch.
"""
from __future__ import annotations

from pathlib import Path

from benchutil.errors import BenchError
from tasks.captions import CaptionItem
from tasks.demonstrations import without_colons
from tasks.vlm_task import Scorer, VLMPrompts, VLMTask


class CaptioningTask(VLMTask):
    kind = "captioning"
    metric = "CIDEr"

    def __init__(self, name: str, items: list[CaptionItem], max_references: int = 5,
                 caption_tokens: int | None = None) -> None:
        self.items = {it.id: it for it in items}
        super().__init__(name, {k: it.image for k, it in self.items.items()})
        self.max_references = max_references
        self.caption_tokens = caption_tokens  # the dataset's generation length (RobustVLM: 20), else the VLM's
        self.settings = {"max_references": max_references, "caption_tokens": caption_tokens}

    def prompts(self, ids: list[str], style: VLMPrompts) -> list[str]:
        return ["".join(style.caption_demonstration.format(caption=without_colons(c.strip()))
                        for c in self.demonstrations_for(i, style)) + style.caption for i in ids]

    def max_new_tokens(self, style: VLMPrompts) -> int:
        return self.caption_tokens or style.caption_tokens

    def length_penalty(self, style: VLMPrompts) -> float:
        return style.caption_length_penalty

    def postprocess(self, text: str) -> str:
        """OpenFlamingo's postprocess_captioning_generation and RobustVLM's quote removal."""
        return text.split("Output", 1)[0].replace('"', "")

    def attack_targets(self, ids: list[str]) -> list[list[str]]:
        items = [self.items[i] for i in ids]
        return [(it.attacked if it.attacked is not None else it.references)[: self.max_references] for it in items]

    def training_targets(self, ids: list[str]) -> list[list[str]]:
        return [self.items[i].references for i in ids]

    def references(self, ids: list[str]) -> dict[str, list[str]]:
        """Every reference caption of each sample (CIDEr's; the attack uses the first max_references)."""
        return {i: list(self.items[i].references) for i in ids}

    def scorer(self, ids: list[str]) -> Scorer:
        from tasks.metrics import CiderReferences  # pycocoevalcap loads on first use

        # Tokenised once per run; each call tokenises only the outputs it scores.
        return CiderReferences(self.references(ids)).scores


def coco_references(annotations: Path, ids: list[str]) -> dict[str, list[str]]:
    """COCO's reference captions from captions_val2014.json through the COCO API, as the papers read them."""
    from pycocotools.coco import COCO

    if not annotations.is_file():
        raise BenchError(f"COCO annotations {annotations} do not exist; put captions_val2014.json there")
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # the COCO API prints progress lines
        try:
            coco = COCO(str(annotations))
        except Exception as err:  # json errors, missing keys: the API raises several types
            raise BenchError(f"COCO annotations {annotations} cannot be read ({type(err).__name__}: {err}); "
                             f"re-download captions_val2014.json") from None
    out = {}
    for i in ids:
        anns = coco.imgToAnns.get(int(i), [])
        if not anns:
            raise BenchError(f"{annotations} has no captions for image id {i}; use the val2014 annotations")
        out[i] = [a["caption"] for a in anns]
    return out
