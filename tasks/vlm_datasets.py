"""Captioning and VQA datasets of the paper suite, in OpenFlamingo's eval layout under the data root.

    coco/dataset_coco.json (Karpathy) + coco/val2014/ + coco/annotations/captions_val2014.json
    flickr30k/dataset_flickr30k.json (Karpathy) + flickr30k/flickr30k-images/
    vqav2/v2_OpenEnded_mscoco_val2014_questions.json + v2_mscoco_val2014_annotations.json + vqav2/val2014/
    textvqa/val_questions_vqa_format.json + val_annotations_vqa_format.json + textvqa/train_images/
    vizwiz/val_questions_vqa_format.json + val_annotations_vqa_format.json + vizwiz/val/<image_id>
        (OpenFlamingo's VizWiz files: image_id is the file name, VizWiz_val_00000000.jpg)
    okvqa/OpenEnded_mscoco_val2014_questions.json + mscoco_val2014_annotations.json
        + okvqa/val2014/COCO_val2014_<image_id:012d>.jpg (OK-VQA's own files, COCO val2014 images)
    pope/llava_pope_test.jsonl + pope/coco/coco_pope_{random,popular,adversarial}.json + coco/val2014/
    scienceqa/llava_test_CQM-A.json + pid_splits.json + problems.json + scienceqa/test/<id>/image.png

OpenFlamingo's zero-shot prompts also read the training split (text only): the Karpathy
files' "train" images, vqav2/v2_OpenEnded_mscoco_train2014_questions.json +
v2_mscoco_train2014_annotations.json, textvqa/train_questions_vqa_format.json +
train_annotations_vqa_format.json, vizwiz/train_questions_vqa_format.json +
train_annotations_vqa_format.json, okvqa/OpenEnded_mscoco_train2014_questions.json +
mscoco_train2014_annotations.json.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from benchutil.errors import BenchError
from benchutil.registry import Registry
from tasks.answer_records import RecordedVQATask, read_answer_records, with_train_demonstrations
from tasks.answering import VQATask, read_vqa_task
from tasks.captioning import CaptioningTask, coco_references
from tasks.captions import read_karpathy
from tasks.demonstrations import karpathy_train_captions, lazy_pool, vqa_train_pairs
from tasks.okvqa import NLTK_SEARCH_PATH, OKVQATask, StemmingData
from tasks.pope import POPE_ANSWER_TOKENS, pope_reader
from tasks.pope_files import SPLITS as POPE_SPLITS
from tasks.scienceqa import SCIENCEQA_ANSWER_TOKENS, scienceqa_reader
from tasks.vlm_task import VLMTask


@dataclass(frozen=True)
class VLMTaskSpec:
    read: Callable[[str, Path], VLMTask]  # (name, data root) -> task


# RobustVLM's protocol (vlm_eval/run_evaluation.py): 500 samples chosen with np.random.seed(42),
# the 5 most common answers attacked, answers generated for at most 5 (VQAv2) / 10 (TextVQA)
# / 20 (captions) tokens and cleaned by OpenFlamingo's post-processing, VQA accuracy by
# OpenFlamingo's evaluator (open_flamingo/eval/vqa_metric.py).
PAPER_VQA = {"vqa_metric": "openflamingo", "max_answers": 5}
PAPER_CAPTION_TOKENS = 20
PAPER_SELECTION_SEED = 42
T = TypeVar("T", bound=VLMTask)


def paper(task: T, early_stop: float | None = None) -> T:
    """RobustVLM's sample selection and output cleaning, recorded in the task's settings, and
    its early stop (a sample is no longer attacked once its score falls below it), which
    --protocol robustvlm applies."""
    task.selection_seed, task.reference_postprocess = PAPER_SELECTION_SEED, True
    task.settings |= {"selection_seed": PAPER_SELECTION_SEED, "postprocess": "robustvlm"}
    if early_stop is not None:
        task.robustvlm_early_stop = early_stop
    return task


FETCH = "get OpenFlamingo's evaluation files (README: paper suite datasets)"


def with_caption_demonstrations(task: CaptioningTask, karpathy: Path) -> CaptioningTask:
    """Demonstrations (for VLMs whose prompts carry them) from the Karpathy file's train split."""
    task.demonstration_pool = lazy_pool(lambda: karpathy_train_captions(karpathy), [karpathy], FETCH)
    return task


def _coco(name: str, root: Path) -> CaptioningTask:
    karpathy = root / "coco" / "dataset_coco.json"
    items = read_karpathy(karpathy, root / "coco", "test")
    refs = coco_references(root / "coco" / "annotations" / "captions_val2014.json", [it.id for it in items])
    task = CaptioningTask(name, [replace(it, references=refs[it.id], attacked=it.references) for it in items],
                          caption_tokens=PAPER_CAPTION_TOKENS)
    return paper(with_caption_demonstrations(task, karpathy), early_stop=10.0)  # cider_threshold["coco"]


def _flickr(name: str, root: Path) -> CaptioningTask:
    base = root / "flickr30k"
    task = CaptioningTask(name, read_karpathy(base / "dataset_flickr30k.json", base / "flickr30k-images", "test"),
                          caption_tokens=PAPER_CAPTION_TOKENS)
    return paper(with_caption_demonstrations(task, base / "dataset_flickr30k.json"), early_stop=2.0)


def vqa_reader(folder: str, questions: str, annotations: str, image: Callable[[Path, int | str], Path],
               train: tuple[str, str] | None = None, **options: Any) -> Callable[[str, Path], VQATask]:
    """options: VQATask's protocol settings (vqa_metric, max_answers, answer_tokens); `train`:
    the training split's (questions, annotations) files, the demonstrations' source."""
    def read(name: str, root: Path) -> VQATask:
        base = root / folder
        task = read_vqa_task(name, base / questions, base / annotations, lambda it: image(base, it.image_id),
                             **options)
        if train is not None:
            files = [base / train[0], base / train[1]]
            task.demonstration_pool = lazy_pool(lambda: vqa_train_pairs(*files), files, FETCH)
        return task

    return read


def coco_number(image_id: int | str) -> int:
    """A COCO image id (VQAv2 file names hold it as a 12-digit number)."""
    try:
        return int(image_id)
    except ValueError:
        raise BenchError(f"VQA image_id {image_id!r} is not a number; VQAv2-format files name COCO images by "
                         "their numeric id") from None


def _paper_vqa(folder: str, questions: str, annotations: str, image: Callable[[Path, int | str], Path],
               answer_tokens: int, train: tuple[str, str]) -> Callable[[str, Path], VQATask]:
    read = vqa_reader(folder, questions, annotations, image, train, **PAPER_VQA, answer_tokens=answer_tokens)
    return lambda name, root: paper(read(name, root))

VLM_DATASETS: Registry[VLMTaskSpec] = Registry("task")
VLM_DATASETS.add("coco", VLMTaskSpec(_coco),
                 "COCO captions, Karpathy test split (5000 images); references from captions_val2014.json; CIDEr")
VLM_DATASETS.add("flickr30k", VLMTaskSpec(_flickr), "Flickr30k captions, Karpathy test split (1000 images); CIDEr")
VLM_DATASETS.add("vqav2", VLMTaskSpec(_paper_vqa(
    "vqav2", "v2_OpenEnded_mscoco_val2014_questions.json", "v2_mscoco_val2014_annotations.json",
    lambda base, i: base / "val2014" / f"COCO_val2014_{coco_number(i):012d}.jpg", answer_tokens=5,
    train=("v2_OpenEnded_mscoco_train2014_questions.json", "v2_mscoco_train2014_annotations.json"))),
    "VQAv2 val2014 questions (10 answers each); VQA accuracy")
VLM_DATASETS.add("textvqa", VLMTaskSpec(_paper_vqa(
    "textvqa", "val_questions_vqa_format.json", "val_annotations_vqa_format.json",
    lambda base, i: base / "train_images" / f"{i}.jpg", answer_tokens=10,
    train=("train_questions_vqa_format.json", "train_annotations_vqa_format.json"))),
    "TextVQA val (VQA format, OpenFlamingo's files); VQA accuracy")
# RobustVLM's POPE and ScienceQA runs (bash/eval_pope.sh, bash/eval_scienceqa.sh: LLaVA only)
VLM_DATASETS.add("pope", VLMTaskSpec(pope_reader("pope", "coco/val2014", answer_tokens=POPE_ANSWER_TOKENS)),
                 "POPE object hallucination on COCO val2014, splits random + popular + adversarial (8910 yes/no "
                 "questions); mean F1 over the splits")
for _split in POPE_SPLITS:
    VLM_DATASETS.add(f"pope-{_split}", VLMTaskSpec(pope_reader("pope", "coco/val2014", (_split,),
                                                                answer_tokens=POPE_ANSWER_TOKENS)),
                     f"POPE's {_split} split alone; F1")
VLM_DATASETS.add("scienceqa", VLMTaskSpec(scienceqa_reader("scienceqa", answer_tokens=SCIENCEQA_ANSWER_TOKENS)),
                 "ScienceQA-IMG: the test questions with an image (2017 of 4241, LLaVA's llava_test_CQM-A.json); "
                 "multiple-choice accuracy")


# VizWiz and OK-VQA as OpenFlamingo's eval reads them (open_flamingo/scripts/run_eval.sh, eval_datasets.py
# VQADataset.get_img_path): VizWiz's image_id is the image's file name in vizwiz/val; OK-VQA's is a
# COCO id, COCO_val2014_<id:012d>.jpg in okvqa/val2014. Both read the same way in the tiny suite.
def vizwiz_files(base: Path, split: str) -> tuple[Path, Path]:
    """(questions, annotations) of a VizWiz split in OpenFlamingo's VQA format."""
    return base / f"{split}_questions_vqa_format.json", base / f"{split}_annotations_vqa_format.json"


def okvqa_files(base: Path, split: str) -> tuple[Path, Path]:
    """(questions, annotations) of an OK-VQA split (COCO's train2014 / val2014)."""
    return base / f"OpenEnded_mscoco_{split}2014_questions.json", base / f"mscoco_{split}2014_annotations.json"


def vizwiz_image(base: Path, image_id: int | str, split: str = "val") -> Path:
    if not isinstance(image_id, str):
        raise BenchError(f"VizWiz image_id {image_id!r} is not a file name; OpenFlamingo's VizWiz files name each "
                         f"image by its file name (VizWiz_{split}_00000000.jpg)")
    return base / split / image_id


def vizwiz_reader(split: str = "val", **options: Any) -> Callable[[str, Path], VQATask]:
    """VizWiz under root/vizwiz (split "train": the training split as a task, what tiny-llava trains
    on); options: VQATask's protocol settings (max_answers, answer_tokens)."""
    def read(name: str, root: Path) -> VQATask:
        base = root / "vizwiz"
        recorded = read_answer_records(*vizwiz_files(base, split))
        task = RecordedVQATask(name, recorded, lambda it: vizwiz_image(base, it.image_id, split), "vizwiz",
                               **options)
        return with_train_demonstrations(task, *vizwiz_files(base, "train"), FETCH)

    return read


def okvqa_reader(stemming: Callable[[Path], StemmingData] = lambda root: NLTK_SEARCH_PATH, split: str = "val",
                 **options: Any) -> Callable[[str, Path], VQATask]:
    """OK-VQA under root/okvqa (split "train": the training split as a task, what tiny-llava trains on);
    stemming: the nltk data its stemmer uses, given the data root (nltk's search path unless a suite
    has its own); options: VQATask's protocol settings (max_answers, answer_tokens)."""
    def read(name: str, root: Path) -> VQATask:
        base = root / "okvqa"
        recorded = read_answer_records(*okvqa_files(base, split))
        task = OKVQATask(name, recorded,
                         lambda it: base / f"{split}2014" / f"COCO_{split}2014_{coco_number(it.image_id):012d}.jpg",
                         stemming(root), **options)
        return with_train_demonstrations(task, *okvqa_files(base, "train"), FETCH)

    return read


def _paper_recorded(read: Callable[[str, Path], VQATask]) -> Callable[[str, Path], VQATask]:
    return lambda name, root: paper(read(name, root))


# evaluate_vqa's default max_generation_length (5): run_evaluation.py passes none for VizWiz or OK-VQA.
VLM_DATASETS.add("vizwiz", VLMTaskSpec(_paper_recorded(vizwiz_reader(max_answers=PAPER_VQA["max_answers"],
                                                                     answer_tokens=5))),
                 "VizWiz val (OpenFlamingo's VQA-format files, 4319 questions); VQA accuracy as OpenFlamingo's "
                 "evaluator scores its answer records")
VLM_DATASETS.add("okvqa", VLMTaskSpec(_paper_recorded(okvqa_reader(max_answers=PAPER_VQA["max_answers"],
                                                                   answer_tokens=5))),
                 "OK-VQA val2014 (5046 questions); answers stemmed as OK-VQA's are, then VQA accuracy",
                 aliases=("ok_vqa",))
