"""The tiny suite: the generated world (cached under BENCH_HOME) and the shipped tiny zoo."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.encoders.load import EncoderSpec
from bench.tiny import world
from benchutil.errors import BenchError
from benchutil.paths import bench_home, user_path
from benchutil.registry import Registry
from tasks.datasets import DatasetSpec
from tasks.retrieval_data import RetrievalData, RetrievalSpec, read_karpathy_retrieval
from tasks.vlm_datasets import VLMTaskSpec
from tasks.vlm_task import VLMTask

CLASSIFICATION_TASKS = tuple(world.CLASSIFICATION)  # the robust tiny encoders train on their train splits
HELD_OUT_TASKS = tuple(world.HELD_OUT)  # no train split: unseen by every tiny model
ROBUST_METHODS = {"tecoa": "TeCoA", "fare": "FARE", "sim-clip": "Sim-CLIP"}


# Worlds verified by this process: verifying hashes every file (~0.4 s), and a run asks once per task.
_VERIFIED: set[Path] = set()


def world_root(flag: str | None = None, seed: int = 0) -> Path:
    """The tiny world: generated on first use (progress bar), reused once its manifest verifies."""
    root = user_path(flag, "--data-root") if flag else bench_home() / f"tiny-world-v{world.VERSION}-seed{seed}"
    if root in _VERIFIED:
        return root
    _VERIFIED.add(_checked_world(root, bool(flag), seed))
    return root


def _checked_world(root: Path, users: bool, seed: int) -> Path:
    if users:  # a user's folder is only read, never regenerated or deleted
        if not world.verify(root):
            raise BenchError(f"--data-root {root} does not hold a complete tiny world (missing or changed files); "
                             f"write one with: bench data tiny --out {root}")
        return root
    if world.verify(root):
        return root
    world.write_world(root, seed=seed, hint="free space, or set BENCH_HOME to a folder on a larger disk")
    return root


def training_folders(root: Path) -> list[tuple[str, Path]]:
    """(dataset, train folder) of what the robust tiny encoders fine-tune on; HELD_OUT_TASKS have none."""
    return [(name, root / "classification" / name / "train") for name in CLASSIFICATION_TASKS]


def tiny_zoo() -> Registry[EncoderSpec]:
    zoo: Registry[EncoderSpec] = Registry("encoder")
    zoo.add("clip", EncoderSpec("tiny-clip", "tiny:clip"),
            "tiny CLIP trained contrastively on the tiny world's captions (bench/tiny/weights/clip.json)")
    for method, title in ROBUST_METHODS.items():
        for eps in (2, 4):
            name = f"{method}-{eps}"
            zoo.add(name, EncoderSpec("tiny-clip", "tiny:clip", vision=f"tiny:{name}"),
                    f"{title} fine-tune of the tiny clip at eps {eps}/255 (bench/tiny/weights/{name}.json)")
    return zoo


def tiny_vlm_datasets() -> Registry[VLMTaskSpec]:
    """The tiny world's captioning, VQA and reading tasks, read by the paper suite's readers."""
    from tasks.captioning import CaptioningTask
    from tasks.captions import read_karpathy
    from tasks.vlm_datasets import coco_number, vqa_reader, with_caption_demonstrations

    def captions(name: str, root: Path) -> CaptioningTask:
        karpathy = root / "captions" / "dataset_tiny.json"
        return with_caption_demonstrations(CaptioningTask(name, read_karpathy(karpathy, root / "captions", "test")),
                                           karpathy)

    datasets: Registry[VLMTaskSpec] = Registry("task")
    datasets.add("tiny-captions", VLMTaskSpec(captions),
                 f"tiny world captioning (Karpathy format), {world.CAPTION_SPLITS['test']} test images, 5 refs; CIDEr")
    vqa_image = lambda b, i: b / "images" / f"COCO_val2014_{coco_number(i):012d}.jpg"  # noqa: E731
    train = ("questions_train.json", "annotations_train.json")
    datasets.add("tiny-vqa", VLMTaskSpec(vqa_reader("vqa", "questions_val.json", "annotations_val.json", vqa_image,
                                                    train, vqa_metric="official-2017")),
                 f"tiny world VQA (VQAv2 format): count, colour, shape, yes/no on {world.VQA_SPLITS['val']} images")
    datasets.add("tiny-textvqa", VLMTaskSpec(vqa_reader("textvqa", "questions_val.json", "annotations_val.json",
                                                        lambda b, i: b / "train_images" / f"{i}.jpg", train,
                                                        vqa_metric="official-2017")),
                 f"tiny world reading (TextVQA format): the word on a sign, {world.TEXTVQA_SPLITS['val']} images")
    # VizWiz and OK-VQA: the paper suite's readers and scoring (OpenFlamingo's evaluator over answer
    # records; OK-VQA's stemming, with the world's own nltk data), the tiny suite's 3 attacked answers
    # and the VLM's answer length
    from bench.tiny import knowledge, nltk_data, unanswerable
    from tasks.vlm_datasets import okvqa_reader, vizwiz_reader

    datasets.add("tiny-vizwiz", VLMTaskSpec(vizwiz_reader()),
                 f"tiny world VizWiz (OpenFlamingo's VQA format): colour, shape or sign asked about, "
                 f"{unanswerable.UNANSWERABLE_SHARE:.0%} not in the scene ('unanswerable'), "
                 f"{unanswerable.SPLITS['val']} images")
    datasets.add("tiny-okvqa", VLMTaskSpec(okvqa_reader(stemming=nltk_data.stemming_data)),
                 f"tiny world OK-VQA (OK-VQA's files): a fact about an object (use, fruit of its colour, corners), "
                 f"answers stemmed; {knowledge.SPLITS['val']} images")
    # POPE and ScienceQA-IMG: the paper suite's readers and scoring, the VLM's answer length
    from bench.tiny.pope_scienceqa import POPE_IMAGES, SCIENCEQA_IMAGES
    from tasks.pope import pope_reader
    from tasks.scienceqa import scienceqa_reader

    datasets.add("tiny-pope", VLMTaskSpec(pope_reader("pope", "pope/val2014")),
                 f"tiny world object hallucination (POPE format): is there a <shape>? on {POPE_IMAGES['test']} images, "
                 "random + popular + adversarial negatives; mean F1 over the splits")
    datasets.add("tiny-scienceqa", VLMTaskSpec(scienceqa_reader("scienceqa", letters_any_case=True)),
                 f"tiny world multiple choice (ScienceQA-IMG format, LLaVA's CQM-A): {SCIENCEQA_IMAGES['test']} "
                 "questions, 2-4 options; accuracy")
    return datasets


def training_tasks(root: Path) -> dict[str, VLMTask]:
    """Each tiny VLM task's training split, read as a task by the same readers (what tiny-llava
    trains on, with the prompts and answers the evaluated split uses)."""
    from tasks.captioning import CaptioningTask
    from tasks.captions import read_karpathy
    from tasks.pope import pope_reader
    from tasks.scienceqa import scienceqa_reader
    from bench.tiny import nltk_data
    from tasks.vlm_datasets import coco_number, okvqa_reader, vizwiz_reader, vqa_reader

    train = ("questions_train.json", "annotations_train.json")
    readers: dict[str, Callable[[str, Path], VLMTask]] = {
        "tiny-captions": lambda name, r: CaptioningTask(
            name, read_karpathy(r / "captions" / "dataset_tiny.json", r / "captions", "train")),
        "tiny-vqa": vqa_reader("vqa", *train, lambda b, i: b / "images" / f"COCO_val2014_{coco_number(i):012d}.jpg"),
        "tiny-textvqa": vqa_reader("textvqa", *train, lambda b, i: b / "train_images" / f"{i}.jpg"),
        "tiny-vizwiz": vizwiz_reader("train"),
        "tiny-okvqa": okvqa_reader(split="train", stemming=nltk_data.stemming_data),
        "tiny-pope": pope_reader("pope/train", "pope/train2014", questions="llava_pope_train.jsonl"),
        "tiny-scienceqa": scienceqa_reader("scienceqa", "llava_train_CQM-A.json", "train", letters_any_case=True,
                                           split="train"),
    }
    return {name: read(f"{name} (train split)", root) for name, read in readers.items()}


def tiny_retrieval_datasets() -> Registry[RetrievalSpec]:
    """The tiny world's caption test split as a retrieval task (the Karpathy file's raw sentences)."""
    def retrieval(name: str, root: Path) -> RetrievalData:
        return read_karpathy_retrieval(name, root / "captions" / "dataset_tiny.json", root / "captions")

    datasets: Registry[RetrievalSpec] = Registry("task")
    datasets.add("tiny-retrieval", RetrievalSpec(retrieval),
                 f"tiny world image-text retrieval (Karpathy format), {world.CAPTION_SPLITS['test']} test images x 5 "
                 "captions; image-to-text R@1 (six recalls in results.json)")
    return datasets


def tiny_datasets() -> Registry[DatasetSpec]:
    datasets: Registry[DatasetSpec] = Registry("task")
    what = {"tiny-shape": "5 shapes", "tiny-colour": "6 colours", "tiny-count": "1-3 objects"}
    for name in CLASSIFICATION_TASKS:
        datasets.add(name, DatasetSpec(f"classification/{name}/test"),
                     f"tiny world zero-shot classification: {what[name]}, {world.PER_CLASS['test']} test images/class")
    for name in HELD_OUT_TASKS:
        datasets.add(name, DatasetSpec(f"classification/{name}/test"),
                     f"tiny world zero-shot classification held out from every tiny model's training: "
                     f"{len(world.HELD_OUT[name])} backgrounds, {world.PER_CLASS['test']} test images/class")
    return datasets
