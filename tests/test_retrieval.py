"""Zero-shot image-text retrieval: CLIP_benchmark's recall, the attack, the paper readers, bench run."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from attacks.table import TABLE
from bench import load_encoder
from bench.cli.main import main
from bench.run.store import read_records, read_run_records
from bench.suites import get_suite, load_task
from tasks.base import AttackSettings
from tasks.retrieval import RetrievalTask, RetrievalVictim
from tasks.retrieval_data import RetrievalData
from tasks.retrieval_recall import run_recalls
from tests import bench_fixtures as fx


# --- A transcription of LAION-AI/CLIP_benchmark clip_benchmark/metrics/zeroshot_retrieval.py ---------------------
def reference_evaluate(model, dataloader, tokenizer, device, amp=True, recall_k_list=[5]):  # noqa: B006
    batch_images_emb_list = []
    batch_texts_emb_list = []
    texts_image_index = []
    dataloader = dataloader_with_indices(dataloader)
    for batch_images, batch_texts, inds in dataloader:
        batch_images = batch_images.to(device)
        batch_texts_tok = tokenizer([text for i, texts in enumerate(batch_texts) for text in texts]).to(device)
        batch_texts_image_index = [ind for ind, texts in zip(inds, batch_texts) for text in texts]
        with torch.no_grad(), torch.autocast(device, enabled=amp):
            batch_images_emb = F.normalize(model.encode_image(batch_images), dim=-1)
            batch_texts_emb = F.normalize(model.encode_text(batch_texts_tok), dim=-1)
        batch_images_emb_list.append(batch_images_emb.cpu())
        batch_texts_emb_list.append(batch_texts_emb.cpu())
        texts_image_index.extend(batch_texts_image_index)
    batch_size = len(batch_images_emb_list[0])
    images_emb = torch.cat(batch_images_emb_list)
    texts_emb = torch.cat(batch_texts_emb_list)
    scores = texts_emb @ images_emb.t()
    positive_pairs = torch.zeros_like(scores, dtype=bool)
    positive_pairs[torch.arange(len(scores)), texts_image_index] = True
    metrics = {}
    for recall_k in recall_k_list:
        metrics[f"image_retrieval_recall@{recall_k}"] = (batchify(recall_at_k, scores, positive_pairs, batch_size,
                                                                  device, k=recall_k) > 0).float().mean().item()
        metrics[f"text_retrieval_recall@{recall_k}"] = (batchify(recall_at_k, scores.T, positive_pairs.T, batch_size,
                                                                 device, k=recall_k) > 0).float().mean().item()
    return metrics


def dataloader_with_indices(dataloader):
    start = 0
    for x, y in dataloader:
        end = start + len(x)
        inds = torch.arange(start, end)
        yield x, y, inds
        start = end


def recall_at_k(scores, positive_pairs, k):
    nb_texts, nb_images = scores.shape
    topk_indices = torch.topk(scores, k, dim=1)[1]
    nb_positive = positive_pairs.sum(dim=1)
    topk_indices_onehot = torch.nn.functional.one_hot(topk_indices, num_classes=nb_images)
    positive_pairs_reshaped = positive_pairs.view(nb_texts, 1, nb_images)
    nb_true_positive = (topk_indices_onehot * positive_pairs_reshaped).sum(dim=(1, 2))
    recall_at_k = (nb_true_positive / nb_positive)
    return recall_at_k


def batchify(func, X, Y, batch_size, device, *args, **kwargs):
    results = []
    for start in range(0, len(X), batch_size):
        end = start + batch_size
        x = X[start:end].to(device)
        y = Y[start:end].to(device)
        result = func(x, y, *args, **kwargs).cpu()
        results.append(result)
    return torch.cat(results)
# ------------------------------------------------------------------------------------------------------------------


# --- A transcription of how the reference's flickr30k captions are made and read ----------------------------------
def reference_flickr_file(karpathy: dict, path: Path) -> None:
    """mehdidc/retrieval_annotations build_flickr30k_splits.py, for the test split."""
    rows = []
    for dt in karpathy["images"]:
        if dt["split"] != "test":
            continue
        for sent in [s["raw"] for s in dt["sentences"]]:
            rows.append({"image": dt["filename"], "caption": sent})
    pd.DataFrame(rows).to_csv(path, sep=",", index=False)


def reference_flickr_read(path: Path) -> list[tuple[str, list[str]]]:
    """clip_benchmark/datasets/flickr.py Flickr.__init__."""
    from collections import defaultdict

    data = defaultdict(list)
    with open(path) as fd:
        fd.readline()
        for line in fd:
            line = line.strip()
            if line:
                img, caption = line.strip().split(".jpg,")
                img = img + ".jpg"
                data[img].append(caption)
    return list(data.items())
# ------------------------------------------------------------------------------------------------------------------


UNIT_VECTORS = [v / 2 for v in np.array(np.meshgrid(*[[-1, 1]] * 4)).T.reshape(-1, 4)] + \
               [s * e for e in np.eye(4) for s in (1, -1)]  # 24 unit vectors whose dot products are exact


class TableEncoder(nn.Module):
    """A stand-in CLIP whose 'pixels' in [0, 1] encode an embedding (2x - 1) and whose tokens index
    a table of caption embeddings: scores are exact, so ties are real ties on both sides."""

    def __init__(self, captions: torch.Tensor) -> None:
        super().__init__()
        self.captions = captions
        self.scale = nn.Parameter(torch.ones(()))  # a parameter, as attack_mode expects of a model

    def encode_image(self, x: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        return F.normalize(self.scale * (2 * x.flatten(1) - 1), dim=-1)

    def encode_text(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        return self.captions[tokens]


@pytest.mark.parametrize("seed, exact", [(0, True), (1, True), (2, False)])
def test_recalls_equal_clip_benchmark_evaluate_with_ties_and_several_captions(seed, exact):
    """Per-image records -> the six recalls, against the reference on the same embeddings: exact unit
    vectors (many tied scores: duplicate captions and duplicate images) or Gaussian ones."""
    rng = np.random.default_rng(seed)
    n_images, counts = 14, [int(c) for c in rng.integers(1, 4, size=14)]
    if exact:
        images = torch.tensor(np.stack([UNIT_VECTORS[i] for i in rng.integers(0, 24, n_images)]), dtype=torch.float32)
        captions = torch.tensor(np.stack([UNIT_VECTORS[i] for i in rng.integers(0, 24, sum(counts))]),
                                dtype=torch.float32)
    else:
        images = F.normalize(torch.tensor(rng.normal(size=(n_images, 4)), dtype=torch.float32), dim=-1)
        captions = F.normalize(torch.tensor(rng.normal(size=(sum(counts), 4)), dtype=torch.float32), dim=-1)
    pixels = ((images + 1) / 2).view(n_images, 4, 1, 1)  # what TableEncoder decodes back to `images`
    encoder = TableEncoder(captions)
    names = [f"caption {k}" for k in range(sum(counts))]
    per_image = np.split(np.array(names), np.cumsum(counts)[:-1])
    loader = [(pixels[i : i + 4], [list(c) for c in per_image[i : i + 4]]) for i in range(0, n_images, 4)]
    tokenizer = lambda texts: torch.tensor([names.index(t) for t in texts])
    reference = reference_evaluate(encoder, loader, tokenizer, "cpu", amp=False, recall_k_list=[1, 5, 10])

    ids = [f"{k}" for k in range(n_images)]
    task = RetrievalTask(RetrievalData("table", ids, [Path(f"{k}.png") for k in ids], [list(c) for c in per_image],
                                       "test"))
    caption_image = torch.tensor([k for k, c in enumerate(counts) for _ in range(c)])
    with torch.no_grad():
        victim = RetrievalVictim(encoder, captions, caption_image, encoder.encode_image(pixels)).eval()
    records = []
    for i in range(0, n_images, 5):  # other batches than the reference's: per-image records do not depend on them
        batch = ids[i : i + 5]
        records += task.attack(victim, batch, pixels[i : i + 5], AttackSettings(TABLE["none"], 0.0, "linf", 1, 0))
    ours = run_recalls(records)
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key  # the reference averages in float32
        assert ours[f"clean_{key}"] == ours[key]
    assert ours["n_captions"] == sum(counts)
    if exact:  # the case has ties that decide hits (else it would not test them)
        scores = captions @ images.T
        assert any(len(set(row.tolist())) < n_images for row in scores)


@pytest.fixture(scope="module")
def tiny():
    task = load_task(get_suite("tiny"), "tiny-retrieval", None)
    encoder = load_encoder("clip", "tiny")

    class Models:
        vlm_name = "none"

        def vlm(self):
            raise AssertionError("retrieval never builds a VLM")

    models = Models()
    models.encoder = encoder
    return task, encoder, task.victim(models, None).model


def test_tiny_clean_recalls_equal_the_reference_on_the_real_encoder(tiny):
    task, encoder, victim = tiny
    ids = list(task.data.ids)
    loader = [(task.load(ids[i : i + 64], encoder.image_size), task.data.captions[i : i + 64])
              for i in range(0, len(ids), 64)]
    reference = reference_evaluate(encoder, loader, encoder.tokenizer, "cpu", amp=False, recall_k_list=[1, 5, 10])
    records = []
    for i in range(0, len(ids), 50):
        batch = ids[i : i + 50]
        records += task.attack(victim, batch, task.load(batch, encoder.image_size),
                               AttackSettings(TABLE["none"], 0.0, "linf", 1, 0))
    ours = run_recalls(records)
    assert {k: pytest.approx(v, abs=1e-6) for k, v in reference.items()} == {k: ours[k] for k in reference}
    assert len(task.data.ids) == 200 and ours["n_captions"] == 1000  # the whole test split, 5 captions each


def test_the_loss_is_the_cross_entropy_over_all_captions_with_the_true_ones_as_targets(tiny):
    task, encoder, victim = tiny
    ids = task.sample_ids(3, 0)
    own = torch.tensor([task.index[i] for i in ids])
    with torch.no_grad():
        emb = victim.embed(task.load(ids, encoder.image_size))
        ce = F.cross_entropy(victim.image_logits(emb), own, reduction="none")
        log_p = torch.log_softmax(100 * emb @ victim.text.T, dim=1)
        positives = victim.caption_image[None, :] == own[:, None]
        expected = -torch.logsumexp(log_p.masked_fill(~positives, float("-inf")), dim=1)
    assert torch.allclose(ce, expected, atol=1e-4)


def test_the_attack_lowers_recall_stays_in_the_ball_and_records_what_its_points_score(tiny):
    task, encoder, victim = tiny
    ids, eps = task.sample_ids(8, 0), 2 / 255
    x = task.load(ids, encoder.image_size)
    kept: dict[str, torch.Tensor] = {}
    settings = AttackSettings(TABLE["apgd"], eps, "linf", 10, 0, sample_seeds=tuple(range(8)),
                              keep_example=lambda i, clean, adv: kept.__setitem__(i, adv.clone()))
    records = task.attack(victim, ids, x, settings)
    recalls = run_recalls(records)
    for k in (1, 5, 10):
        assert recalls[f"text_retrieval_recall@{k}"] <= recalls[f"clean_text_retrieval_recall@{k}"]
    assert recalls["text_retrieval_recall@1"] < recalls["clean_text_retrieval_recall@1"]
    assert recalls["image_retrieval_recall@1"] < recalls["clean_image_retrieval_recall@1"]
    own = torch.tensor([task.index[i] for i in ids])
    points = torch.stack([kept[i] for i in ids])
    assert float((points - x).abs().max()) <= eps + 1e-6 and float(points.min()) >= 0 and float(points.max()) <= 1
    with torch.no_grad():
        rescored = victim.outcome(victim.embed(points), own)
    for r, row in zip(records, rescored.tolist()):
        assert r["linf"] <= eps + 1e-6 and r["adv_score"] <= r["clean_score"]
        if r["winner"] is not None:  # a pass's point: what it scores is what is recorded
            assert [int(h) for h in r["adv_i2t_hits"]] + r["adv_t2i_hits"] == row
        else:  # nothing the attack found was lower: the clean image stands
            assert r["linf"] == 0 and r["adv_i2t_hits"] == r["clean_i2t_hits"]


def _run(out: Path, *extra: str) -> int:
    return main(["run", "--suite", "tiny", "--encoder", "clip", "--task", "tiny-retrieval", "--n-samples", "6",
                 "--steps", "3", "--batch-size", "4", "--out", str(out), *extra])


def test_bench_run_clean_and_under_aa_apgd_pgd_resumes_to_the_same_records(tmp_path, capsys):
    for attack in ("aa", "apgd", "pgd"):
        assert _run(tmp_path, "--attack", attack, "--eps", "0,4/255") == 0
        assert "image-to-text R@1 %" in capsys.readouterr().out
    assert _run(tmp_path, "--attack", "torchattacks:PGD", "--eps", "4/255") == 0  # a reference on the classifier
    runs = {p.name.split("__")[2]: p for p in tmp_path.iterdir() if p.is_dir()}
    assert set(runs) == {"none", "aa", "apgd", "pgd", "torchattacks:PGD"}
    for attack, run in runs.items():
        records = read_run_records(run)
        assert len(records) == 6
        results = json.loads((run / "results.json").read_text())
        assert results["task"] == "zeroshot_retrieval"
        recalls = {k: v for k, v in results["metrics"].items() if "recall" in k}
        assert len(recalls) == 12 and recalls == pytest.approx(
            {k: v for k, v in run_recalls(records).items() if "recall" in k})
        assert results["metrics"]["text_retrieval_recall@1"] == pytest.approx(
            sum(r["adv_score"] for r in records) / 600)
        if attack == "none":
            assert all(r["linf"] == 0 and r["winner"] is None for r in records)
        else:
            assert all(r["linf"] <= 4 / 255 + 1e-6 for r in records)
            assert results["metrics"]["text_retrieval_recall@1"] < results["metrics"]["clean_text_retrieval_recall@1"]
    # Resume: as if killed after the first record of the aa run.
    records_file = runs["aa"] / "records.jsonl"
    full, summary = records_file.read_text(), (runs["aa"] / "results.json").read_text()
    records_file.write_text(full.splitlines(keepends=True)[0])
    assert _run(tmp_path, "--attack", "aa", "--eps", "4/255") == 0
    assert records_file.read_text() == full
    assert (runs["aa"] / "results.json").read_text() == summary
    capsys.readouterr()
    assert main(["leaderboard", str(tmp_path), "--format", "csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "tiny-retrieval image-to-text R@1 % clean" in header
    assert "tiny-retrieval image-to-text R@1 % Linf 4/255" in header


# --- The paper suite's readers on files in the real formats ------------------------------------------------------
def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(seed).random((40, 52, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)


def _write(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


COCO_IDS = [1003, 1001, 1004, 1000, 1002]  # the Karpathy file's order; CocoCaptions reads them by id


def make_coco(root: Path) -> dict[int, list[str]]:
    """dataset_coco.json (Karpathy) + captions_val2014.json (COCO format, annotations interleaved
    across images, 5 to 7 per image) + val2014 images; returns each test image's captions."""
    images, coco_images, annotations = [], [], []
    captions: dict[int, list[str]] = {}
    for k, cocoid in enumerate([*COCO_IDS, 999]):
        name = f"COCO_val2014_{cocoid:012d}.jpg"
        _image(root / "coco" / "val2014" / name, k)
        images.append({"filepath": "val2014", "filename": name, "cocoid": cocoid, "split": "test" if k < 5 else "val",
                       "sentences": [{"raw": f"karpathy sentence {j} of {cocoid}"} for j in range(5)]})
        coco_images.append({"id": cocoid, "file_name": name, "height": 40, "width": 52})
        captions[cocoid] = [f"A photo, number {cocoid}, take {j}. " for j in range(5 + k % 3)]
    for j in range(7):  # annotation j of every image, then j + 1: the API keeps each image's in file order
        annotations += [{"id": 100 * j + i, "image_id": cocoid, "caption": caps[j]}
                        for i, (cocoid, caps) in enumerate(captions.items()) if j < len(caps)]
    _write(root / "coco" / "dataset_coco.json", {"images": images, "dataset": "coco"})
    _write(root / "coco" / "annotations" / "captions_val2014.json",
           {"images": coco_images, "annotations": annotations, "info": {}, "licenses": [], "type": "captions"})
    return {i: captions[i] for i in COCO_IDS}


FLICKR_RAW = ["Two men, one in a gray shirt, stand near a stove .", 'A sign says "open" .', "A dog runs  ",
              'He said, "hi" and left .', "  plain words ."]


def make_flickr(root: Path, sentences: int = 5) -> dict:
    """dataset_flickr30k.json (Karpathy; 3 test images, raw sentences with commas, quotes and
    spaces at either end) + flickr30k-images."""
    images = []
    for k in range(4):
        name = f"{1000092795 + k}.jpg"
        _image(root / "flickr30k" / "flickr30k-images" / name, 10 + k)
        raw = [FLICKR_RAW[(k + j) % 5] + (f" ({k}, {j})" if j % 2 else "") for j in range(sentences)]
        images.append({"filename": name, "imgid": k, "split": "test" if k < 3 else "train",
                       "sentences": [{"raw": r} for r in raw]})
    karpathy = {"images": images, "dataset": "flickr30k"}
    _write(root / "flickr30k" / "dataset_flickr30k.json", karpathy)
    return karpathy


@pytest.fixture(scope="module")
def paper_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    coco = make_coco(root)
    karpathy = make_flickr(root)
    return root, coco, karpathy


def test_paper_readers_follow_clip_benchmarks_files(paper_root, tmp_path):
    root, coco, karpathy = paper_root
    suite = get_suite("paper")
    task = load_task(suite, "coco-retrieval", str(root))
    assert isinstance(task, RetrievalTask)
    assert task.data.ids == [str(i) for i in sorted(COCO_IDS)]  # ascending id, as CocoCaptions
    assert task.data.captions == [coco[i] for i in sorted(COCO_IDS)]  # the annotations, not Karpathy's sentences
    assert [len(c) for c in task.data.captions] == [5, 6, 6, 5, 7]
    assert task.data.images[0] == root / "coco" / "val2014" / "COCO_val2014_000000001000.jpg"
    assert task.settings["captions"] == "coco-annotations" and task.settings["gallery_captions"] == 29

    flickr = load_task(suite, "flickr30k-retrieval", str(root))
    reference_flickr_file(karpathy, tmp_path / "flickr30k_test_karpathy.txt")
    expected = reference_flickr_read(tmp_path / "flickr30k_test_karpathy.txt")
    assert [(p.name, c) for p, c in zip(flickr.data.images, flickr.data.captions)] == expected
    assert '"Two men, one in a gray shirt, stand near a stove ."' in flickr.data.captions[0]  # quoted, as there
    assert flickr.data.ids == ["1000092795", "1000092796", "1000092797"]


def test_bench_run_on_the_paper_readers(paper_root, tmp_path, capsys):
    root, _, _ = paper_root
    ckpt = fx.save_full_safetensors(fx.random_model(seed=0), tmp_path / "tiny.safetensors")
    out = tmp_path / "runs"
    assert main(["run", "--suite", "paper", "--encoder", str(ckpt), "--task", "coco-retrieval,flickr30k-retrieval",
                 "--data-root", str(root), "--attack", "apgd", "--eps", "0,8/255", "--steps", "2", "--out",
                 str(out)]) == 0
    table = capsys.readouterr().out
    assert "coco-retrieval" in table and "flickr30k-retrieval" in table
    runs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(runs) == 4
    for run in runs:
        metrics = json.loads((run / "results.json").read_text())["metrics"]
        coco = "coco" in run.name
        assert metrics["n_samples"] == (5 if coco else 3) and metrics["n_captions"] == (29 if coco else 15)
        assert len(read_records(run / "records.jsonl")) == metrics["n_samples"]


# --- Bad input: one line, exit code 2, nothing written ------------------------------------------------------------
def _broken_root(tmp_path: Path, defect: str) -> Path:
    root = tmp_path / "data"
    make_coco(root)
    karpathy = make_flickr(root)
    if defect == "missing karpathy":
        (root / "coco" / "dataset_coco.json").unlink()
    elif defect == "image without captions":
        karpathy["images"][1]["sentences"] = []
        _write(root / "flickr30k" / "dataset_flickr30k.json", karpathy)
    elif defect == "missing annotations":
        (root / "coco" / "annotations" / "captions_val2014.json").unlink()
    elif defect == "coco image without annotations":
        annotations = json.loads((root / "coco" / "annotations" / "captions_val2014.json").read_text())
        annotations["annotations"] = [a for a in annotations["annotations"] if a["image_id"] != 1004]
        _write(root / "coco" / "annotations" / "captions_val2014.json", annotations)
    elif defect == "missing image":
        (root / "flickr30k" / "flickr30k-images" / "1000092797.jpg").unlink()
    return root


@pytest.mark.parametrize("defect, task, message", [
    ("missing karpathy", "coco-retrieval", r"captions file .*dataset_coco.json does not exist; check --data-root"),
    ("image without captions", "flickr30k-retrieval", r"images\[1\] \(1000092796.jpg\) has no reference captions"),
    ("missing annotations", "coco-retrieval", r"captions_val2014.json do not exist"),
    ("coco image without annotations", "coco-retrieval", r"has no captions for image id 1004"),
    ("missing image", "flickr30k-retrieval", r"cannot read image .*1000092797.jpg"),
])
def test_bad_paper_data_is_one_line_exit_2_nothing_written(tmp_path, capsys, defect, task, message):
    root = _broken_root(tmp_path, defect)
    out = tmp_path / "runs"
    ckpt = fx.save_full_safetensors(fx.random_model(seed=0), tmp_path / "tiny.safetensors")
    code = main(["run", "--suite", "paper", "--encoder", str(ckpt), "--task", task, "--data-root", str(root),
                 "--eps", "0", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(message, err), err
    assert not out.exists()


@pytest.mark.parametrize("extra, message", [
    (["--target", "maybe"], "--target applies to captioning / VQA tasks"),
    (["--attack", "cw", "--attack-args", '{"c": 2.0}'], "classic L2 CW"),
    (["--task", "tiny-retreival"], "did you mean 'tiny-retrieval'"),
    (["--n-samples", "201"], "more than the 200 samples of tiny-retrieval"),
])
def test_bad_run_options_are_one_line_exit_2_nothing_written(tmp_path, capsys, extra, message):
    out = tmp_path / "runs"
    assert main(["run", "--suite", "tiny", "--encoder", "clip", "--task", "tiny-retrieval", "--eps", "4/255",
                 "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_a_hand_built_split_without_captions_is_refused():
    from benchutil.errors import BenchError

    with pytest.raises(BenchError, match="image 'b' has no captions"):
        RetrievalData("x", ["a", "b"], [Path("a.png"), Path("b.png")], [["a cat"], []], "test")
