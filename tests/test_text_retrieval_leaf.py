"""LEAF's own text-to-image retrieval objective (tasks/retrieval_objectives.py) on the tiny suite:
the task's charmer path against a transcription of LEAF's attack_text_charmer_inference, the CLI
end to end, and the names and settings that keep the two objectives apart."""
import string
from pathlib import Path

import pytest
import torch

from attacks.charmer import levenshtein
from attacks.table import TABLE
from bench.cli.main import main
from bench.run.store import CONFIG, read_config, read_run_records
from bench.suites import get_suite, load_encoder, load_task
from tasks.base import AttackSettings
from tasks.record_checks import violations
from tasks.retrieval_objectives import LEAF_OBJECTIVES, LEAF_TARGETS, RetrievalObjective
from tasks.text_retrieval import rank_of

# LEAF's V (utils_attacks.py): -1 (delete / leave a gap) then these characters' code points.
LEAF_V = [-1] + [ord(c) for c in string.ascii_lowercase + " " + string.ascii_uppercase + string.digits
                 + string.punctuation]
LEAF_N, LEAF_K = 10, 2  # eval_retrieval.py's --n and --k defaults
LEAF_BATCH = 20 * 128  # attack_text_charmer_inference's batch_size
FORWARD_CHUNK = 256  # sentences per encoder forward: the task's, so both sides see the same floats
CAPTIONS_COMPARED = 2


# --- A transcription of LEAF's attack_text_charmer_inference (utils_attacks.py), no constraint ---

def leaf_generate_sentence(sentence: str, z: int, code: int) -> str:
    """generate_sentence(S, z, u, V, k=1, alternative=-1): S padded as "_c_c_..._", position z set."""
    padded = list("".join("_" + c for c in sentence) + "_")
    shown = [i % 2 == 1 for i in range(len(padded))]  # the mask: characters yes, "_" gaps no
    if code == -1 or padded[z] == chr(code):  # alternative=-1: writing what is there deletes it
        padded[z], shown[z] = "_", False
    else:
        padded[z], shown[z] = chr(code), True
    return "".join(c for c, s in zip(padded, shown) if s)


def leaf_features(encoder, sentences: list[str], normalize: bool) -> torch.Tensor:
    return torch.cat([encoder.encode_text(encoder.tokenizer(sentences[i : i + FORWARD_CHUNK]), normalize=normalize)
                      .float() for i in range(0, len(sentences), FORWARD_CHUNK)])


def leaf_losses(encoder, sentences: list[str], anchor: torch.Tensor, objective: str) -> torch.Tensor:
    """LEAF's batched scoring: slices [i*B, min((i+1)*B, len - 1)), so the last sentence is never scored."""
    normalize = objective in ("sim", "dissim")
    out = []
    for i in range(len(sentences) // LEAF_BATCH + 1):
        begin, end = i * LEAF_BATCH, min((i + 1) * LEAF_BATCH, len(sentences) - 1)
        if begin >= end:
            continue
        features = leaf_features(encoder, sentences[begin:end], normalize)
        if objective == "l2":
            out.append(((features - anchor) ** 2).sum(dim=-1))
        elif objective == "negl2":
            out.append(-((features - anchor) ** 2).sum(dim=-1))
        elif objective == "dissim":
            out.append(-(features @ anchor.T).squeeze(-1))
        else:
            out.append((features @ anchor.T).squeeze(-1))
    return torch.cat(out)


@torch.no_grad()
def leaf_charmer_inference(encoder, sentence: str, target: str, objective: str, n: int, k: int) -> str:
    anchor = encoder.encode_text(encoder.tokenizer([target]), normalize=False).float()  # get_text_features
    if objective in ("dissim", "sim"):
        anchor = anchor / anchor.norm(dim=-1, keepdim=True)
    for _ in range(k):  # no success test: always k rounds
        spaced = [leaf_generate_sentence(sentence, z, ord(" ")) for z in range(2 * len(sentence) + 1)]
        loss = leaf_losses(encoder, spaced, anchor, objective)
        top = torch.topk(loss, min(n, loss.shape[0]), dim=0).indices
        candidates = [leaf_generate_sentence(sentence, int(z), code) for z in top for code in LEAF_V]
        loss = leaf_losses(encoder, candidates, anchor, objective)
        sentence = candidates[torch.argmax(loss).item()]
    return sentence


# --- our side ---

@pytest.fixture(scope="module")
def tiny():
    """The tiny CLIP, its retrieval victim (the same gallery whatever the objective) and the
    first queries whose image is at rank 1 clean (the only ones attacked)."""
    encoder = load_encoder("clip", "tiny")

    class Models:
        vlm_name = "none"

    Models.encoder = encoder
    task = load_task(get_suite("tiny"), "tiny-text-retrieval", None)
    victim = task.victim(Models, None).model
    ids = task.sample_ids(20, 0)
    batch = task.load(ids, encoder.image_size)
    ranks = [int(rank_of(victim.scores([sentence]), own)[0]) for sentence, own in batch]
    picked = [i for i, rank in zip(ids, ranks) if rank == 1][:CAPTIONS_COMPARED]
    assert len(picked) == CAPTIONS_COMPARED
    return encoder, victim, picked


@pytest.mark.parametrize("name, objective, target", [("tiny-text-retrieval-leaf", "dissim", 0),
                                                     ("tiny-text-retrieval-leaf-l2-target0", "l2", 0),
                                                     ("tiny-text-retrieval-leaf-l2-target2", "l2", 2)])
def test_the_leaf_path_writes_the_caption_leafs_attack_writes(tiny, name, objective, target):
    """Same V, n = 10, k = 2, leaf_quirks on (LEAF's scoring leaves each step's last sentence out):
    the task's adversarial caption is LEAF's, character for character."""
    encoder, victim, ids = tiny
    task = load_task(get_suite("tiny"), name, None)
    assert task.objective == RetrievalObjective(objective, target)
    settings = AttackSettings(TABLE["charmer"], float(LEAF_K), "levenshtein", 1, 0, {"leaf_quirks": True})
    records = task.attack(victim, ids, task.load(ids, encoder.image_size), settings)
    for r in records:
        theirs = leaf_charmer_inference(encoder, r["clean_text"], LEAF_TARGETS[target], objective, LEAF_N, LEAF_K)
        assert r["adv_text"] == theirs
        assert r["distance"] == levenshtein(r["clean_text"], theirs) <= LEAF_K
        assert not violations(r, float(LEAF_K), "levenshtein")


def test_bench_run_leaf_objective_end_to_end(tmp_path: Path):
    out = tmp_path / "runs"
    assert main(["run", "--suite", "tiny", "--encoder", "clip", "--task", "tiny-text-retrieval-leaf",
                 "--attack", "charmer", "--norm", "levenshtein", "--eps", "1", "--n-samples", "8",
                 "--batch-size", "4", "--out", str(out)]) == 0
    (config_path,) = out.glob(f"*/{CONFIG}")
    config, records = read_config(config_path), read_run_records(config_path.parent)
    settings = config["task_settings"]
    assert (settings["loss"], settings["target_index"], settings["target_sentence"]) == ("dissim", 0, LEAF_TARGETS[0])
    assert settings["early_stop"] is False and config["task"] == "tiny-text-retrieval-leaf"
    assert len(records) == 8
    for r in records:
        assert r["distance"] == levenshtein(r["clean_text"], r["adv_text"]) <= 1
        assert not violations(r, 1.0, "levenshtein")
        if r["clean_rank"] != 1:  # not attacked: the query as it was
            assert r["adv_text"] == r["clean_text"] and r["winner"] == "clean"
    # LEAF never stops early, so every attacked query was edited unless a no-op scored best
    assert any(r["adv_text"] != r["clean_text"] for r in records if r["clean_rank"] == 1)


def test_every_leaf_objective_and_target_has_one_task_name_and_the_margin_keeps_its_settings():
    suite = get_suite("tiny")
    objectives = {}
    for name in suite.text_datasets.names():
        if name.startswith("tiny-text-retrieval"):
            objectives[name] = load_task(suite, name, None).objective
    assert len(set(objectives.values())) == len(objectives) == 1 + len(LEAF_OBJECTIVES) * len(LEAF_TARGETS)
    assert objectives["tiny-text-retrieval"] == RetrievalObjective()
    assert objectives["tiny-text-retrieval-leaf"] == RetrievalObjective("dissim", 0)  # LEAF's --obj / --target
    assert {f"coco-text-retrieval{n[len('tiny-text-retrieval'):]}" for n in objectives} <= set(
        get_suite("paper").text_datasets.names())
    margin = load_task(suite, "tiny-text-retrieval", None).settings
    assert margin["loss"] == "margin" and not {"target_index", "target_sentence", "early_stop"} & set(margin)
    # bench list shows the default and one pattern line for the eleven siblings (each one still runs)
    from bench.cli.listing import rows

    listed = [name for name, _, _ in rows("tasks", "tiny") if name.startswith("tiny-text-retrieval")]
    assert listed == ["tiny-text-retrieval", "tiny-text-retrieval-leaf", "tiny-text-retrieval-leaf-OBJECTIVE-targetI"]


@pytest.mark.parametrize("objective, target, message", [("cosine", 0, "unknown retrieval objective"),
                                                        ("dissim", 3, "target index is 0..2"),
                                                        ("dissim", None, "target index is 0..2"),
                                                        ("margin", 0, "no target sentence")])
def test_an_objective_outside_leafs_is_refused(objective, target, message):
    with pytest.raises(ValueError, match=message):
        RetrievalObjective(objective, target)
