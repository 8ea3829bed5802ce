"""Metrics match their reference code: CIDEr = pycocoevalcap's pipeline, the pure-Python PTB
tokenizer = the Java one it replaces, VQA accuracy = the official evaluator's rules."""
import json
import os
import random
import shutil

import pytest

from benchutil.errors import BenchError
from tasks import metrics, ptb
from tasks.metrics import cider, cider_scores, vqa_accuracy

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="needs Java (the reference PTB tokenizer)")

# Tricky captions and what the 3.4.1 jar (via pycocoevalcap's flags and filter) makes of them,
# recorded here so the no-Java path is checked even where Java is missing.
TRICKY = {
    "A man riding a horse.": "a man riding a horse",
    "A dog, a cat; and a bird: together!": "a dog a cat and a bird together",
    "Is it raining?": "is it raining",
    "Wow!!! Really?!": "wow !!! really ?!",  # pycocoevalcap drops "!" but keeps "!!!" and "?!"
    'A sign that says "STOP".': "a sign that says stop",
    "The word 'open' on a door.": "the word open on a door",
    "“Smart quotes” and ‘single ones’ here.": "smart quotes and single ones here",
    "He don't know; it's fine, isn't it? I'm sure they've won't can't.":
        "he do n't know it 's fine is n't it i 'm sure they 've wo n't ca n't",
    "The dog's bone and the dogs' toys.": "the dog 's bone and the dogs toys",
    "A well-known x-ray of a t-shirt -- and a re-entry - oh.": "a well-known x-ray of a t-shirt and a re-entry oh",
    "3.5 inches, 1,000 people, 10:30 and 1990s.": "3.5 inches 1,000 people 10:30 and 1990s",
    "A 3-year-old with 2 dogs and 100% effort.": "a 3-year-old with 2 dogs and 100 % effort",
    "A cat (a small one) [sic] here.": "a cat -lrb- a small one -rrb- -lsb- sic -rsb- here",  # -lrb- is kept
    "Café naïve résumé ÜBER straße.": "café naïve résumé über straße",
    "A bowl of fruit... and — dashes – too…": "a bowl of fruit and dashes too",
    "Trailing period at the end .": "trailing period at the end",
    "   multiple   spaces\tand tab  ": "multiple spaces and tab",
    "": "",
    ".": "",
    "Mr. Smith and Dr. Who met on St. Patrick's day, etc.": "mr. smith and dr. who met on st. patrick 's day etc.",
    "A cannot gonna wanna situation.": "a can not gon na wan na situation",
    "Line one\nline two": "line one line two",  # a newline inside a caption is a space
    "-5 degrees, dog., 5., it’s & more": "-5 degrees dog. 5. it 's & more",  # "dog.," keeps its period
    "THE END.": "the end",
    "The U.S. flag at 5 p.m. and e.g., a.m.": "the u.s. flag at 5 p.m. and e.g. a.m.",
    "ends with they're": "ends with they re",  # the file's last line: Java reads "'re" as a quote
}


def _reference_ptb(captions):
    """pycocoevalcap's own PTBTokenizer (it writes a temp file into its package directory)."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    if not os.access(os.path.dirname(ptb.jar_path()), os.W_OK):
        pytest.skip("pycocoevalcap's package directory is read-only; its PTBTokenizer cannot run")
    out = PTBTokenizer().tokenize({k: [{"caption": c}] for k, c in enumerate(captions)})
    return [out[k][0] for k in range(len(captions))]


@pytest.fixture
def no_java(monkeypatch):
    monkeypatch.setattr(ptb.shutil, "which", lambda name: None)


# ---------------------------------------------------------------- PTB tokenisation
@needs_java
def test_java_tokenizer_is_pycocoevalcaps():
    captions = list(TRICKY)
    assert ptb.java_tokenize(captions) == _reference_ptb(captions) == list(TRICKY.values())


@needs_java
def test_java_temp_file_stays_out_of_the_package(monkeypatch):
    seen, run = [], ptb.subprocess.run
    monkeypatch.setattr(ptb.subprocess, "run", lambda cmd, **kw: seen.append(cmd) or run(cmd, **kw))
    assert ptb.java_tokenize(["A dog."]) == ["a dog"]
    assert not seen[0][-1].startswith(str(ptb.jar_path().parent))


def test_python_tokenizer_matches_recorded_java_output():
    assert ptb.python_tokenize(list(TRICKY)) == list(TRICKY.values())


@pytest.fixture(scope="module")
def tiny_captions():
    from bench.tiny.suite import world_root
    data = json.loads((world_root() / "captions" / "dataset_tiny.json").read_text())
    return [[s["raw"] for s in image["sentences"]] for image in data["images"]]


@needs_java
def test_python_tokenizer_matches_java_on_the_tiny_world(tiny_captions):
    raw = [c for refs in tiny_captions for c in refs]
    assert ptb.python_tokenize(raw) == ptb.java_tokenize(raw)


def _fuzz(n, seed):
    """Captions glued from words, clitics, numbers and punctuation, to stress the lexer."""
    rng = random.Random(seed)
    words = ("a man's dog Cat it's don't can't won't I'm they're HE'S you’re dogs' café naïve ÉCOLE Mr Dr "
             "St etc Miss ill Mfg no fig cannot gonna dunno well-known 3-year-old x-ray 3 3.5 1,000 10:30 "
             "1990s 2x -5 3.5-inch o'clock b U.S. p.m").split()
    pre = ["", "", "", '"', "(", "[", "“", "‘", "'", "-"]
    post = ["", "", "", ".", ",", ";", ":", "!", "?", "?!", "...", "…", '."', ")", "]", "'", "”", "’",
            "-", "---", ".,", "%"]
    for _ in range(n):
        parts = [rng.choice(["—", "–", "&", ". . .", "'s"]) if rng.random() < 0.1
                 else rng.choice(pre) + rng.choice(words) + rng.choice(post) for _ in range(rng.randint(0, 9))]
        yield "".join(p + rng.choice([" ", " ", "  ", "\t", ""]) for p in parts)


def _accepted(captions):
    """The captions the pure-Python tokenizer takes; a lower-case line between them keeps one
    caption's end from meeting the next one's capital (a context the guards refuse)."""
    ok = []
    for c in captions:
        try:
            ptb.python_tokenize([c])
        except BenchError:
            continue
        ok += [c, "x"]
    return ok


@needs_java
def test_python_tokenizer_matches_java_on_fuzzed_captions():
    captions = _accepted(_fuzz(3000, seed=0))
    assert len(captions) > 2 * 1000  # the guards leave most of it to check
    assert ptb.python_tokenize(captions) == ptb.java_tokenize(captions)


@pytest.mark.parametrize("caption", ["see www.example.com", "the U.S. Mail", "a smiley :)", "rock'n'roll",
                                     "emoji 🙂", "3 1/2 cups", "call (555) 555-5555", "x a. The dog"])
def test_text_outside_the_checked_subset_needs_java(no_java, caption):
    with pytest.raises(BenchError, match="CIDEr needs Java for the PTB tokenizer.*apt install default-jre"):
        ptb.tokenize([caption])


def test_auto_tokenizer_uses_python_without_java(no_java, monkeypatch):
    monkeypatch.setattr(ptb, "java_tokenize", lambda *a: pytest.fail("Java was called"))
    assert ptb.tokenize(["A dog's bone."]) == ["a dog 's bone"]
    with pytest.raises(BenchError, match="needs Java on PATH"):
        ptb.tokenize(["A dog."], "java")
    with pytest.raises(BenchError, match="unknown PTB tokenizer 'jav'"):
        ptb.tokenize(["A dog."], "jav")


# ---------------------------------------------------------------- CIDEr
@pytest.fixture(scope="module")
def caption_set(tiny_captions):
    """20 tiny-world images with 5 references and predictions of every kind."""
    rng = random.Random(0)
    refs = {f"img{i}": tiny_captions[i] for i in range(20)}
    others = [c for r in tiny_captions[20:40] for c in r]
    kinds = [lambda r: r[0], lambda r: r[3].upper(), lambda r: rng.choice(others),
             lambda r: " ".join(rng.sample(r[1].split(), len(r[1].split()))), lambda r: "", lambda r: ".",
             lambda r: "a", lambda r: r[2].replace("a ", "the ") + "!"]
    preds = {k: kinds[i % len(kinds)](r) for i, (k, r) in enumerate(refs.items())}
    return preds, refs


@needs_java
def test_cider_is_pycocoevalcaps_pipeline(caption_set):
    from pycocoevalcap.cider.cider import Cider
    preds, refs = caption_set
    ids = list(refs)
    flat = _reference_ptb([c for k in ids for c in refs[k]])
    gts = {k: flat[5 * i:5 * i + 5] for i, k in enumerate(ids)}
    res = dict(zip(ids, ([t] for t in _reference_ptb([preds[k] for k in ids]))))
    mean, per_sample = Cider().compute_score(gts, res)
    assert cider(preds, refs) == pytest.approx(100 * mean, abs=1e-9)
    scores = cider_scores(preds, refs)
    assert [scores[k] for k in ids] == pytest.approx([100 * s for s in per_sample], abs=1e-9)
    assert 0 < cider(preds, refs) < 1000


def test_cider_is_the_mean_of_the_sample_scores(caption_set, no_java):
    preds, refs = caption_set
    scores = cider_scores(preds, refs)  # no Java: the pure-Python tokenizer
    assert cider(preds, refs) == pytest.approx(sum(scores.values()) / len(scores), abs=1e-12)
    assert scores["img0"] > 100 > scores["img4"] == 0  # a reference itself vs an empty caption


@needs_java
def test_cider_is_the_same_with_either_tokenizer(caption_set):
    preds, refs = caption_set
    assert cider_scores(preds, refs, "python") == cider_scores(preds, refs, "java")


def test_a_samples_score_ignores_the_other_predictions(caption_set):
    preds, refs = caption_set
    before = cider_scores(preds, refs)
    changed = {k: ("The dog." if i % 2 else v) for i, (k, v) in enumerate(preds.items())}
    after = cider_scores(changed, refs)
    assert all(after[k] == before[k] for i, k in enumerate(refs) if i % 2 == 0)
    assert any(after[k] != before[k] for i, k in enumerate(refs) if i % 2)


def test_a_batch_scores_as_in_the_whole_set(caption_set):
    """CiderReferences (references tokenised once, per run) scores any subset exactly."""
    from tasks.metrics import CiderReferences

    preds, refs = caption_set
    whole = cider_scores(preds, refs)
    scorer = CiderReferences(refs)
    batch = dict(list(preds.items())[3:9])
    assert scorer.scores(batch) == {k: whole[k] for k in batch}
    with pytest.raises(BenchError, match="no references for id 'zz'"):
        scorer.scores({"zz": "a dog"})


def test_a_prediction_is_tokenised_apart_from_the_next_one(caption_set):
    # In one file Java reads past a line's end: "letter a." loses its period before a line
    # starting "The". Each prediction gets the same neighbour line, so its score holds.
    if shutil.which("java"):
        assert ptb.java_tokenize(["the letter a.", "The dog"])[0] == "the letter a"
        assert ptb.java_tokenize(["the letter a.", "the dog"])[0] == "the letter a."
    preds, refs = caption_set
    preds = dict(preds, img0="a red square with the letter a.")
    scores = [cider_scores(dict(preds, img1=after), refs)["img0"] for after in ("The dog.", "the dog.")]
    assert scores[0] == scores[1]


@needs_java
def test_other_line_breaks_do_not_shift_captions():
    # Java also ends lines at \r, \v, \f, U+2028/9; pycocoevalcap only replaces \n, so
    # these would pair later tokens with the wrong captions.
    assert ptb.java_tokenize(["a\rb\x0bc\u2028d", "e"]) == ["a b c d", "e"]


def test_cider_names_a_missing_or_extra_id():
    refs = {"a": ["a red square."], "b": ["a blue circle."]}
    with pytest.raises(BenchError, match="no prediction for id 'b'"):
        cider({"a": "a red square."}, refs)
    with pytest.raises(BenchError, match="no references for id 'c'"):
        cider({"a": "x", "b": "y", "c": "z"}, refs)
    with pytest.raises(BenchError, match="id 'a' has no reference captions"):
        cider({"a": "x"}, {"a": []})


# ---------------------------------------------------------------- VQA accuracy
# Expected values below are derived by hand from the official evaluator's rules as they were
# before its 2021 fix (GT-Vision-Lab/VQA, PythonEvaluationTools/vqaEvaluation/vqaEval.py at
# a013f00~1): the variant "official-2017", which the tiny suite uses.
@pytest.mark.parametrize("prediction, answers, expected", [
    ("yes", ["yes"] * 10, 1.0),
    ("yes", ["yes"] * 4 + ["no"] * 6, 1.0),  # 4 agree: every leave-one-out set still has 3
    ("yes", ["yes"] * 3 + ["no"] * 7, 0.9),  # (3 * 2/3 + 7 * 1) / 10
    ("yes", ["yes"] * 2 + ["no"] * 8, 0.6),  # (2 * 1/3 + 8 * 2/3) / 10
    ("yes", ["yes"] + ["no"] * 9, 0.3),
    ("maybe", ["yes"] * 10, 0.0),
    ("Two", ["2"] * 10, 1.0),  # number words become digits (none/zero..ten)
    ("none", ["0"] * 10, 1.0),
    ("eleven", ["11"] * 10, 0.0),
    ("A dog", ["dog"] * 10, 1.0),  # articles go
    ("the  big   dog ", ["big dog"] * 10, 1.0),
    ("dont", ["don't"] * 10, 1.0),  # contractions get their apostrophe
    ("Im", ["I'm"] * 10, 0.0),  # the table's "Im" key is capitalised, so never matches
    ("somebody'd", ["somebodyd"] * 10, 1.0),  # the table maps this one backwards
    ("yes!", ["yes"] * 10, 1.0),  # "!" without a space around it becomes a space
    ("hot-dog", ["hot dog"] * 10, 1.0),
    ("hot - dog", ["hot dog"] * 10, 1.0),  # " - " is removed: "hot  dog" splits the same
    ("1,000", ["1000"] * 10, 1.0),  # a digit,digit anywhere removes all punctuation
    ("1,000 red-white", ["1000 redwhite"] * 10, 1.0),
    ("3.5", ["3.5"] * 10, 1.0),  # a period before a digit stays
    ("5.", ["5"] * 10, 1.0),
    ("U.S.", ["us"] * 10, 1.0),
    ("10:30", ["10:30"] * 10, 1.0),  # ":" and "'" are not in the punctuation list
    ("yes\n", ["yes"] * 10, 1.0),  # the prediction is cleaned of newlines and stripped...
    ("yes", [" yes"] * 10, 0.0),  # ...the answers are not
    ("The Dog", ["The Dog"] * 10, 0.0),  # unanimous answers are compared raw, unnormalised
    ("red", ["Red"] * 4 + ["blue"] * 6, 0.0),  # disagreeing answers get punctuation only: no lower()
    ("dog", ["dog."] * 4 + ["cat"] * 6, 1.0),  # ...which does strip their periods
    ("dog", ["dog."] * 10, 0.0),  # but not when unanimous
])
def test_vqa_accuracy_follows_the_official_rules(prediction, answers, expected):
    assert vqa_accuracy(prediction, answers, "official-2017") == pytest.approx(expected, abs=1e-12)


def test_vqa_period_removal_stops_after_32():
    # The official code passes re.UNICODE (32) where sub() takes its count.
    text = ".".join(["x"] * 34)  # 33 periods: the last one survives
    assert metrics._punctuation(text) == "x" * 33 + ".x"
    assert vqa_accuracy(text, ["x" * 33 + ".x"] * 10, "official-2017") == 1.0


def test_vqa_accuracy_needs_answers():
    with pytest.raises(BenchError, match="needs the human answers"):
        vqa_accuracy("yes", [])


def _reference_loop(prediction: str, answers: list[str], normalise_when: str) -> float:
    """The evaluators' loop as their code runs it (VQAEval.evaluate), written out here:
    clean both sides, normalise according to the variant, then leave one answer out at a
    time and compare dicts (each answer is its own entry, as answer_id makes it)."""
    gts = [{"answer": a.replace("\n", " ").replace("\t", " ").strip(), "answer_id": k} for k, a in enumerate(answers)]
    res = prediction.replace("\n", " ").replace("\t", " ").strip()
    if normalise_when == "always" or len({g["answer"] for g in gts}) > 1:
        for g in gts:
            g["answer"] = metrics._digits_articles(metrics._punctuation(g["answer"]))
        res = metrics._digits_articles(metrics._punctuation(res))
    accs = []
    for left_out in gts:
        others = [g for g in gts if g != left_out]
        accs.append(min(1, float(len([g for g in others if g["answer"] == res])) / 3))
    return float(sum(accs)) / len(accs)


VQA_CASES = [
    ("Two", ["2"] * 10), ("two", ["two"] * 10), ("Yes", ["yes"] * 10), ("yes", [" yes"] * 10),
    ("The Dog", ["The Dog"] * 10), ("dog", ["dog."] * 10), ("red", ["Red"] * 4 + ["blue"] * 6),
    ("2", ["two"] * 3 + ["three"] * 7), ("the beatles", ["The Beatles"] * 9 + ["beatles"]),
    ("yes\n", ["yes"] * 3 + ["no"] * 7), ("hot-dog", ["hot dog"] * 10), ("a cat", ["cat", "dog"] * 5),
]


@pytest.mark.parametrize("prediction, answers", VQA_CASES)
def test_vqa_official_and_openflamingo_variants_follow_their_code(prediction, answers):
    assert vqa_accuracy(prediction, answers, "official") == _reference_loop(prediction, answers, "disagree")
    assert vqa_accuracy(prediction, answers, "openflamingo") == _reference_loop(prediction, answers, "always")


def test_the_three_vqa_evaluators_differ_where_their_code_does():
    # Unanimous answers: the 2021 official code normalises neither side, OpenFlamingo both,
    # the 2017 official code only the prediction.
    assert [vqa_accuracy("Two", ["2"] * 10, v) for v in ("official", "official-2017", "openflamingo")] == [0, 1, 1]
    assert [vqa_accuracy("two", ["two"] * 10, v) for v in ("official", "official-2017", "openflamingo")] == [1, 0, 1]
    assert [vqa_accuracy("Yes", ["yes"] * 10, v) for v in ("official", "official-2017", "openflamingo")] == [0, 1, 1]
    with pytest.raises(BenchError, match="unknown VQA metric 'vqa'"):
        vqa_accuracy("yes", ["yes"], "vqa")
