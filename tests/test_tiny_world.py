"""The tiny world: deterministic, in the real formats, read back by the real readers."""
import json
from collections import Counter

import pytest

from bench.tiny import world
from bench.tiny.tokenizer import UNK, WordTokenizer
from tasks.captions import read_karpathy
from tasks.imagefolder import load_image, read_image_folder
from tasks.vqa import read_vqa


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("w") / "world"
    return root, world.write_world(root, seed=0, progress=False)


@pytest.mark.long
def test_generator_is_deterministic(tiny_world, tmp_path):
    root, manifest = tiny_world
    again = world.write_world(tmp_path / "again", seed=0, progress=False)
    assert again == manifest
    assert world.verify(root)
    other = world.write_world(tmp_path / "other", seed=1, progress=False)
    assert other["files"] != manifest["files"]


def test_manifest_catches_a_changed_file(tiny_world, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_world[0], copy)
    target = next((copy / "captions" / "images").iterdir())
    target.write_bytes(target.read_bytes()[:-1] + b"\x00")
    assert not world.verify(copy)


def test_classification_folders_read_back(tiny_world):
    root, manifest = tiny_world
    for name, classes in world.CLASSIFICATION.items():
        for split, per_class in world.PER_CLASS.items():
            data = read_image_folder(root / "classification" / name / split, name)
            assert sorted(data.classnames) == sorted(classes.values())
            assert Counter(data.labels) == {c: per_class for c in range(len(classes))}
            assert all("{}" in t for t in data.templates)
            img = load_image(data.root / data.ids[0], 64)
            assert img.shape == (3, 64, 64) and 0 <= float(img.min()) and float(img.max()) <= 1


def test_held_out_classification_has_no_train_split_and_no_tiny_model_trains_on_it(tiny_world):
    from bench.tiny.suite import CLASSIFICATION_TASKS, HELD_OUT_TASKS, training_folders

    root, _ = tiny_world
    tok, unk = WordTokenizer(), WordTokenizer().index[UNK]
    for name, classes in world.HELD_OUT.items():
        assert not (root / "classification" / name / "train").exists()
        data = read_image_folder(root / "classification" / name / "test", name)
        assert sorted(data.classnames) == sorted(classes.values())
        assert Counter(data.labels) == {c: world.PER_CLASS["test"] for c in range(len(classes))}
        for template in data.templates:  # the prompts are words the tiny CLIP read in its captions
            assert all(unk not in tok.encode(template.format(c)) for c in data.classnames)
    assert set(HELD_OUT_TASKS).isdisjoint(CLASSIFICATION_TASKS)
    assert {name for name, _ in training_folders(root)} == set(CLASSIFICATION_TASKS)


def test_captions_read_back_with_five_varied_references(tiny_world):
    root, _ = tiny_world
    for split, n in world.CAPTION_SPLITS.items():
        items = read_karpathy(root / "captions" / "dataset_tiny.json", root / "captions", split)
        assert len(items) == n
        for item in items[:50]:
            assert len(item.references) == 5 and len(set(item.references)) == 5
            assert item.image.is_file()


def test_vqa_and_textvqa_read_back(tiny_world):
    root, _ = tiny_world
    for task, splits in (("vqa", world.VQA_SPLITS), ("textvqa", world.TEXTVQA_SPLITS)):
        for split in splits:
            items = read_vqa(root / task / f"questions_{split}.json", root / task / f"annotations_{split}.json")
            assert len(items) >= splits[split]
            types = {i.answer_type for i in items}
            assert types <= {"yes/no", "number", "other"}
            for item in items[:30]:
                assert len(item.answers) == 10
                image = (root / task / "images" / f"COCO_val2014_{item.image_id:012d}.jpg" if task == "vqa"
                         else root / task / "train_images" / f"{item.image_id}.jpg")
                assert image.is_file()
        if task == "vqa":
            assert {"yes/no", "number", "other"} <= {i.answer_type for i in items}


def test_every_caption_word_is_in_the_tiny_vocabulary(tiny_world):
    root, _ = tiny_world
    tok = WordTokenizer()
    data = json.loads((root / "captions" / "dataset_tiny.json").read_text())
    unk = tok.index[UNK]
    for im in data["images"][:500]:
        for s in im["sentences"]:
            assert unk not in tok.encode(s["raw"]), s["raw"]
    for name in world.CLASSIFICATION:
        folder = root / "classification" / name / "test"
        for line in (folder / "templates.txt").read_text().splitlines():
            for c in (folder / "classnames.txt").read_text().split():
                assert unk not in tok.encode(line.format(c))


def test_readers_name_file_and_record_on_bad_input(tmp_path):
    from benchutil.errors import BenchError

    bad = tmp_path / "caps.json"
    bad.write_text(json.dumps({"images": [{"split": "test", "filename": "a.jpg", "sentences": [{"rw": "x"}]}]}))
    with pytest.raises(BenchError, match=r"caps.json: images\[0\].sentences\[0\] has no 'raw'"):
        read_karpathy(bad, tmp_path, "test")
    with pytest.raises(BenchError, match="does not exist"):
        read_karpathy(tmp_path / "missing.json", tmp_path, "test")
    q, a = tmp_path / "q.json", tmp_path / "a.json"
    q.write_text(json.dumps({"questions": [{"image_id": 1, "question": "?", "question_id": 7}]}))
    a.write_text(json.dumps({"annotations": [{"question_id": 7, "answers": [{"answer": "x"}] * 9,
                                              "question_type": "how many", "answer_type": "number"}]}))
    with pytest.raises(BenchError, match=r"annotations\[0\] has 9 answers; VQA needs 10"):
        read_vqa(q, a)


def test_bench_data_never_deletes_a_users_folder(tmp_path, monkeypatch, capsys):
    from bench.cli.main import main

    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    assert main(["data", "tiny", "--out", str(precious)]) == 2
    err = capsys.readouterr().err
    assert "not a tiny world" in err and len(err.strip().splitlines()) == 1
    monkeypatch.chdir(precious)
    assert main(["data", "tiny", "--out", "."]) == 2  # the working folder itself
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temporary folder left either
    assert [p.name for p in precious.iterdir()] == ["thesis.tex"]
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_only_a_pure_tiny_world_is_replaceable(tiny_world, tmp_path):
    import shutil

    root, _ = tiny_world
    assert world.is_replaceable(root) and world.is_replaceable(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    assert world.is_replaceable(tmp_path / "empty")
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    (copy / "captions" / "notes.txt").write_text("mine")  # a user's file inside a world
    assert not world.is_replaceable(copy)
    (copy / "captions" / "notes.txt").unlink()
    (copy / "manifest.json").write_text("{broken")
    assert not world.is_replaceable(copy)


def test_a_killed_generations_temporary_folder_is_removed_by_the_next(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    abandoned = tmp_path / f".tiny-world-{int(dead.stdout)}-abc"  # a generation whose process is gone
    (abandoned / "world").mkdir(parents=True)
    (abandoned / "world" / "half.png").write_bytes(b"x" * 1000)
    living = tmp_path / f".tiny-world-{__import__('os').getpid()}-xyz"  # still being written
    living.mkdir()
    world._remove_abandoned(tmp_path)
    assert not abandoned.exists() and living.exists()
