"""The paper suite's captioning / VQA readers on files in the real formats, and their errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.vlm.projected import Prompts
from benchutil.errors import BenchError
from tasks.vlm_datasets import VLM_DATASETS


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(seed).random((40, 48, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)


def _write(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def make_coco(root: Path, n: int = 6) -> None:
    """Karpathy dataset_coco.json + captions_val2014.json (COCO API format) + val2014 images."""
    images, annotations, coco_images = [], [], []
    for k in range(n):
        cocoid = 1000 + k
        name = f"COCO_val2014_{cocoid:012d}.jpg"
        _image(root / "coco" / "val2014" / name, k)
        split = "test" if k < n - 1 else "val"
        images.append({"filepath": "val2014", "filename": name, "cocoid": cocoid, "split": split,
                       "sentences": [{"raw": f"karpathy caption {j} of {k}"} for j in range(5)]})
        coco_images.append({"id": cocoid, "file_name": name, "height": 40, "width": 48})
        annotations += [{"id": 10 * cocoid + j, "image_id": cocoid, "caption": f"A photo number {k}, take {j}."}
                        for j in range(5 + k % 2)]
    _write(root / "coco" / "dataset_coco.json", {"images": images, "dataset": "coco"})
    _write(root / "coco" / "annotations" / "captions_val2014.json",
           {"images": coco_images, "annotations": annotations, "info": {}, "licenses": [], "type": "captions"})


def make_vqa(root: Path, folder: str, image_name, n: int = 5, sub: str = "val2014") -> tuple[str, str]:
    files = {"vqav2": ("v2_OpenEnded_mscoco_val2014_questions.json", "v2_mscoco_val2014_annotations.json"),
             "textvqa": ("val_questions_vqa_format.json", "val_annotations_vqa_format.json")}[folder]
    questions, annotations = [], []
    for k in range(n):
        image_id = 42 + k if folder == "vqav2" else f"{0xabc + k:016x}"
        _image(root / folder / sub / image_name(image_id), k)
        questions.append({"image_id": image_id, "question": f"what is {k}?", "question_id": 7 * k})
        annotations.append({"question_id": 7 * k, "image_id": image_id, "question_type": "what is",
                            "answer_type": "other", "answers": [{"answer": "two" if j < 6 else "2", "answer_id": j}
                                                                 for j in range(10)]})
    _write(root / folder / files[0], {"questions": questions})
    _write(root / folder / files[1], {"annotations": annotations})
    return files


def test_coco_references_come_from_the_coco_api(tmp_path):
    make_coco(tmp_path)
    task = VLM_DATASETS.get("coco").value.read("coco", tmp_path)
    assert sorted(task.ids) == [str(1000 + k) for k in range(5)]  # the val-split image is not in the test split
    item = task.items["1001"]
    assert item.references == [f"A photo number 1, take {j}." for j in range(6)]  # 6 COCO captions, not Karpathy's 5
    assert item.image.is_file()
    # ... while the attack pushes away from Karpathy's sentences[k].raw, as RobustVLM's CaptionDataset reads them
    assert task.attack_targets(["1001"]) == [[f"karpathy caption {j} of 1" for j in range(5)]]
    assert task.sample_ids(3, 0) == task.sample_ids(3, 0) and len(task.sample_ids(3, 0)) == 3
    assert task.load(task.sample_ids(2, 0), 32).shape == (2, 3, 32, 32)


def test_coco_errors_name_the_file(tmp_path):
    with pytest.raises(BenchError, match="dataset_coco.json does not exist"):
        VLM_DATASETS.get("coco").value.read("coco", tmp_path)
    make_coco(tmp_path)
    (tmp_path / "coco" / "annotations" / "captions_val2014.json").unlink()
    with pytest.raises(BenchError, match="captions_val2014.json do not exist"):
        VLM_DATASETS.get("coco").value.read("coco", tmp_path)
    make_coco(tmp_path)
    data = json.loads((tmp_path / "coco" / "dataset_coco.json").read_text())
    del data["images"][2]["sentences"]
    _write(tmp_path / "coco" / "dataset_coco.json", data)
    with pytest.raises(BenchError, match=r"images\[2\] has no 'sentences'"):
        VLM_DATASETS.get("coco").value.read("coco", tmp_path)


def test_flickr_ids_are_file_stems(tmp_path):
    images = []
    for k in range(3):
        _image(tmp_path / "flickr30k" / "flickr30k-images" / f"{1000092795 + k}.jpg", k)
        images.append({"filename": f"{1000092795 + k}.jpg", "split": "test", "sentences": [{"raw": "a dog ."}]})
    _write(tmp_path / "flickr30k" / "dataset_flickr30k.json", {"images": images})
    task = VLM_DATASETS.get("flickr30k").value.read("flickr30k", tmp_path)
    assert sorted(task.ids) == ["1000092795", "1000092796", "1000092797"]
    assert all(task.images[i].is_file() for i in task.ids)


def test_vqav2_and_textvqa_layouts(tmp_path):
    make_vqa(tmp_path, "vqav2", lambda i: f"COCO_val2014_{i:012d}.jpg")
    make_vqa(tmp_path, "textvqa", lambda i: f"{i}.jpg", sub="train_images")
    for name in ("vqav2", "textvqa"):
        task = VLM_DATASETS.get(name).value.read(name, tmp_path)
        assert len(task.ids) == 5 and all(task.images[i].is_file() for i in task.ids)
        # RobustVLM's passes: distinct answers, most frequent first; then towards "maybe" and "Word"
        assert task.attack_targets(["7"]) == [["two", "2"]]
        assert task.extra_targets == ("maybe", "Word")
        assert task.prompts(["7"], Prompts("", "Q: {question}", 1, 1)) == ["Q: what is 1?"]


def test_vqa_errors_name_file_and_record(tmp_path):
    files = make_vqa(tmp_path, "vqav2", lambda i: f"COCO_val2014_{i:012d}.jpg")
    path = tmp_path / "vqav2" / files[1]
    data = json.loads(path.read_text())
    data["annotations"][3]["answers"] = data["annotations"][3]["answers"][:9]
    _write(path, data)
    with pytest.raises(BenchError, match=r"annotations\[3\] has 9 answers; VQA needs 10"):
        VLM_DATASETS.get("vqav2").value.read("vqav2", tmp_path)
    path.write_text("{not json")
    with pytest.raises(BenchError, match="not valid JSON"):
        VLM_DATASETS.get("vqav2").value.read("vqav2", tmp_path)


def test_paper_tasks_follow_robustvlm_selection_lengths_and_cleaning(tmp_path):
    make_vqa(tmp_path, "vqav2", lambda i: f"COCO_val2014_{i:012d}.jpg", n=12)
    make_coco(tmp_path, n=9)
    vqa = VLM_DATASETS.get("vqav2").value.read("vqav2", tmp_path)
    coco = VLM_DATASETS.get("coco").value.read("coco", tmp_path)
    # prepare_eval_samples: np.random.seed(42); np.random.choice(len(dataset), n, replace=False)
    np.random.seed(42)
    chosen = np.random.choice(12, 5, replace=False)
    assert vqa.sample_ids(5, seed=0) == [vqa.ids[k] for k in chosen] == vqa.sample_ids(5, seed=7)
    assert vqa.max_new_tokens(Prompts("", "", 99, 99)) == 5 and vqa.max_answers == 5
    assert coco.max_new_tokens(Prompts("", "", 99, 99)) == 20
    assert vqa.settings == {"vqa_metric": "openflamingo", "max_answers": 5, "answer_tokens": 5,
                            "selection_seed": 42, "postprocess": "robustvlm"}
    # postprocess_vqa_generation / postprocess_captioning_generation
    assert vqa.postprocess("yes, it is. Question: why") == "yes"
    assert vqa.postprocess("two Short answer: 3") == "two "
    assert coco.postprocess('a "red" bus Output: more') == "a red bus "


def test_robustvlm_early_stops_are_the_captioning_tasks_own(tmp_path):
    make_coco(tmp_path, n=3)
    coco = VLM_DATASETS.get("coco").value.read("coco", tmp_path)
    assert coco.robustvlm_early_stop == 10.0  # cider_threshold["coco"]; Flickr30k's is 2
