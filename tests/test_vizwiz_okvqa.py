"""VizWiz and OK-VQA as RobustVLM evaluates them: OK-VQA's stemming against a transcription of
postprocess_ok_vqa_generation, VizWiz's scoring against a transcription of OpenFlamingo's VQAEval,
the readers on files in the references' layouts, runs end to end on the paper path, bad input,
and the tiny world's versions."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli.main import main
from benchutil.errors import BenchError
from tasks import metrics
from tests import bench_fixtures as fx
from tests.nltk_fixtures import make_nltk_data
from tests.vlm_fixtures import make_llava

# ------------------------------------------------------------------ references, transcribed
# RobustVLM, open_flamingo/eval/ok_vqa_utils.py: _MANUAL_MATCHES, OKVQAStemmer.stem,
# postprocess_ok_vqa_generation (as the reference writes them)
_REFERENCE_MANUAL_MATCHES = {
    "police": "police", "las": "las", "vegas": "vegas", "yes": "yes", "jeans": "jean", "hell's": "hell",
    "domino's": "domino", "morning": "morn", "clothes": "cloth", "are": "are", "riding": "ride", "leaves": "leaf",
    "dangerous": "danger", "clothing": "cloth", "texting": "text", "kiting": "kite", "firefighters": "firefight",
    "ties": "tie", "married": "married", "teething": "teeth", "gloves": "glove", "tennis": "tennis",
    "dining": "dine", "directions": "direct", "waves": "wave", "christmas": "christmas", "drives": "drive",
    "pudding": "pud", "coding": "code", "plating": "plate", "quantas": "quanta", "hornes": "horn", "graves": "grave",
    "mating": "mate", "paned": "pane", "alertness": "alert", "sunbathing": "sunbath", "tenning": "ten",
    "wetness": "wet", "urinating": "urine", "sickness": "sick", "braves": "brave", "firefighting": "firefight",
    "lenses": "lens", "reflections": "reflect", "backpackers": "backpack", "eatting": "eat", "designers": "design",
    "curiousity": "curious", "playfulness": "play", "blindness": "blind", "hawke": "hawk", "tomatoe": "tomato",
    "rodeoing": "rodeo", "brightness": "bright", "circuses": "circus", "skateboarders": "skateboard",
    "staring": "stare", "electronics": "electron", "electicity": "elect", "mountainous": "mountain",
    "socializing": "social", "hamburgers": "hamburg", "caves": "cave", "transitions": "transit", "wading": "wade",
    "creame": "cream", "toileting": "toilet", "sautee": "saute", "buildings": "build", "belongings": "belong",
    "stockings": "stock", "walle": "wall", "cumulis": "cumuli", "travelers": "travel", "conducter": "conduct",
    "browsing": "brows", "pooping": "poop", "haircutting": "haircut", "toppings": "top", "hearding": "heard",
    "sunblocker": "sunblock", "bases": "base", "markings": "mark", "mopeds": "mope",
    "kindergartener": "kindergarten", "pies": "pie", "scrapbooking": "scrapbook", "couponing": "coupon",
    "meetings": "meet", "elevators": "elev", "lowes": "low", "men's": "men", "childrens": "children",
    "shelves": "shelve", "paintings": "paint", "raines": "rain", "paring": "pare", "expressions": "express",
    "routes": "rout", "pease": "peas", "vastness": "vast", "awning": "awn", "boy's": "boy", "drunkenness": "drunken",
    "teasing": "teas", "conferences": "confer", "ripeness": "ripe", "suspenders": "suspend", "earnings": "earn",
    "reporters": "report", "kid's": "kid", "containers": "contain", "corgie": "corgi", "porche": "porch",
    "microwaves": "microwave", "batter's": "batter", "sadness": "sad", "apartments": "apart", "oxygenize": "oxygen",
    "striping": "stripe", "purring": "pure", "professionals": "profession", "piping": "pipe", "farmer's": "farmer",
    "potatoe": "potato", "emirates": "emir", "womens": "women", "veteran's": "veteran", "wilderness": "wilder",
    "propellers": "propel", "alpes": "alp", "charioteering": "chariot", "swining": "swine", "illness": "ill",
    "crepte": "crept", "adhesives": "adhesive", "regent's": "regent", "decorations": "decor", "rabbies": "rabbi",
    "overseas": "oversea", "travellers": "travel", "casings": "case", "smugness": "smug", "doves": "dove",
    "nationals": "nation", "mustange": "mustang", "ringe": "ring", "gondoliere": "gondolier",
    "vacationing": "vacate", "reminders": "remind", "baldness": "bald", "settings": "set", "glaced": "glace",
    "coniferous": "conifer", "revelations": "revel", "personals": "person", "daughter's": "daughter",
    "badness": "bad", "projections": "project", "polarizing": "polar", "vandalizers": "vandal", "minerals": "miner",
    "protesters": "protest", "controllers": "control", "weddings": "wed", "sometimes": "sometime", "earing": "ear",
}


def _reference_postprocess(predictions: str) -> str:
    import inflection
    import nltk
    from nltk.corpus.reader import VERB

    lemmatizer = nltk.stem.WordNetLemmatizer()
    prediction = re.split("Question|Answer|Short", predictions, maxsplit=1)[0]
    word_and_pos = nltk.pos_tag(nltk.tokenize.word_tokenize(prediction))
    stemmed_words = []
    for w, p in word_and_pos:
        if w in _REFERENCE_MANUAL_MATCHES:
            w = _REFERENCE_MANUAL_MATCHES[w]
        elif w.endswith("ing"):
            w = lemmatizer.lemmatize(w, VERB)
        elif p.startswith("NNS") or p.startswith("NNPS"):
            w = inflection.singularize(w)
        stemmed_words.append(w)
    return " ".join(stemmed_words)


def _reference_accuracy(prediction: str, records: list[dict]) -> float:
    """OpenFlamingo's open_flamingo/eval/vqa_metric.py VQAEval.evaluate for one question, as its
    code runs: the answer records cleaned and normalised in place, the prediction too, then for
    each record the others are `[item for item in answers if item != gtAnsDatum]` (dicts)."""
    answers = copy.deepcopy(records)
    for a in answers:
        a["answer"] = a["answer"].replace("\n", " ").replace("\t", " ").strip()
    res = prediction.replace("\n", " ").replace("\t", " ").strip()
    res = metrics._digits_articles(metrics._punctuation(res))
    for a in answers:
        a["answer"] = metrics._digits_articles(metrics._punctuation(a["answer"]))
    accs = []
    for gt in answers:
        others = [item for item in answers if item != gt]
        accs.append(min(1, float(len([item for item in others if item["answer"] == res])) / 3))
    return float(sum(accs)) / len(accs)


# ------------------------------------------------------------------ nltk's data, built here
@pytest.fixture(scope="module")
def nltk_data(tmp_path_factory):
    import nltk

    from tasks import okvqa

    root = make_nltk_data(tmp_path_factory.mktemp("nltk_data"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nltk.data, "path", [str(root)])
        okvqa._stemmer.cache_clear()
        yield root
    okvqa._stemmer.cache_clear()


@pytest.fixture
def no_nltk_data(tmp_path, monkeypatch):
    import nltk

    from tasks import okvqa

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "empty")])
    okvqa._stemmer.cache_clear()  # a stemmer loaded by an earlier test holds its data
    yield
    okvqa._stemmer.cache_clear()


STEM_CASES = [
    "apples", "cherries", "corners", "Vegas", "tomatoes", "blueberries",  # plural nouns: singularised
    "rolling", "cutting", "shining", "warning", "building", "pointing", "counting",  # -ing: WordNet's verb lemma
    "riding", "dining", "leaves", "clothes", "christmas", "tennis", "police", "gloves", "buildings", "morning",
    "four corners", "red apples Question: what", "rolling, cutting", "I don't know", "apples Answer: pies",
    "lemons Short answer: limes", "the red apple.", "", "  ", "grapes, bananas and oranges", "unanswerable",
]


def test_okvqa_stemming_is_postprocess_ok_vqa_generation(nltk_data):
    from tasks.okvqa import MANUAL_MATCHES, postprocess_okvqa

    assert MANUAL_MATCHES == _REFERENCE_MANUAL_MATCHES
    for text in STEM_CASES:
        assert postprocess_okvqa(text) == _reference_postprocess(text), text
    # what each rule does, on these cases
    assert [postprocess_okvqa(t) for t in ("apples", "Vegas", "rolling", "cutting", "shining", "riding", "leaves",
                                           "christmas")] == ["apple", "Vega", "roll", "cut", "shin", "ride", "leaf",
                                                             "christmas"]
    # no cut at ", " (OpenFlamingo's later version cuts there; RobustVLM's does not)
    assert postprocess_okvqa("rolling, cutting") == "roll , cut"


def test_missing_nltk_data_is_one_line_naming_the_download(no_nltk_data):
    from tasks.okvqa import NLTK_DOWNLOAD, require_nltk_data, stem_answer

    assert NLTK_DOWNLOAD == "python -m nltk.downloader punkt_tab averaged_perceptron_tagger_eng wordnet"
    for check in (require_nltk_data, lambda: stem_answer("apples")):
        with pytest.raises(BenchError, match=re.escape(NLTK_DOWNLOAD)) as err:
            check()
        assert "\n" not in str(err.value)


# ------------------------------------------------------------------ VizWiz's scoring
def _vizwiz_records(*pairs: tuple[str, str, int]) -> list[dict]:
    return [{"answer": answer, "answer_confidence": confidence} for answer, confidence, n in pairs for _ in range(n)]


RECORD_CASES = [
    ("unanswerable", _vizwiz_records(("unanswerable", "yes", 10))),  # every record leaves together: 0
    ("unanswerable", _vizwiz_records(("unanswerable", "yes", 6), ("unanswerable", "maybe", 1),
                                     ("unanswerable", "no", 1), ("blank screen", "yes", 1),
                                     ("cannot tell", "maybe", 1))),
    ("Unanswerable", _vizwiz_records(("unanswerable", "yes", 7), ("Unanswerable", "yes", 1), ("no", "no", 2))),
    ("night time", _vizwiz_records(("night time", "maybe", 5), ("unanswerable", "yes", 2), ("no", "yes", 1),
                                   ("night time medicine", "yes", 2))),
    ("blue", _vizwiz_records(("blue", "yes", 3), ("blue", "maybe", 3), ("Blue", "no", 4))),
    ("the dog.", _vizwiz_records(("dog", "yes", 2), ("a dog", "maybe", 2), ("cat", "yes", 6))),
    ("cat", [{"answer": "cat", "answer_confidence": "yes", "answer_id": k} for k in range(10)]),  # ids: no quirk
]


@pytest.mark.parametrize("prediction, records", RECORD_CASES)
def test_vizwiz_records_score_as_openflamingos_evaluator(prediction, records):
    from tasks.answer_records import openflamingo_record_accuracy

    fields = [{k: v for k, v in r.items() if k != "answer"} for r in records]
    ours = openflamingo_record_accuracy(prediction, [r["answer"] for r in records], fields)
    assert ours == pytest.approx(_reference_accuracy(prediction, records), abs=1e-12)


def test_unanswerable_is_scored_by_records_not_by_a_special_rule():
    from tasks.answer_records import openflamingo_record_accuracy

    def accuracy(records: list[dict]) -> float:
        return openflamingo_record_accuracy("unanswerable", [r["answer"] for r in records],
                                            [{k: v for k, v in r.items() if k != "answer"} for r in records])

    assert accuracy(_vizwiz_records(("unanswerable", "yes", 10))) == 0
    assert accuracy(RECORD_CASES[1][1]) == pytest.approx(0.8)  # 6 yes + maybe + no: (6 * 2/3 + 4 * 1) / 10
    # the same answers with answer ids score as VQAv2 does
    assert accuracy([{"answer": "unanswerable", "answer_id": k} for k in range(10)]) == 1


# ------------------------------------------------------------------ files in the references' layouts
def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(seed).random((40, 48, 3)) * 255).astype(np.uint8)).save(path)


def _write(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


VIZWIZ_ANSWERS = [("unanswerable", "yes", 6), ("unanswerable", "maybe", 2), ("blank", "no", 2)]


def make_vizwiz(root: Path, n: int = 6) -> Path:
    """OpenFlamingo's VizWiz files (no answer_id, no answer_type) + vizwiz/val/<image_id>."""
    base = root / "vizwiz"
    head = {"info": {}, "task_type": "Open-Ended", "license": {}}
    for split, count in (("val", n), ("train", 3)):
        questions, annotations = [], []
        for k in range(count):
            image_id = f"VizWiz_{split}_{k:08d}.jpg"
            if split == "val":
                _image(base / "val" / image_id, k)
            records = _vizwiz_records(*VIZWIZ_ANSWERS) if k % 2 == 0 else _vizwiz_records(
                (f"red {k}", "yes", 4), ("red", "maybe", 3), ("unanswerable", "yes", 3))
            question = f"What colour is thing {k}?" if split == "val" else f"Is thing {k} a train?"
            questions.append({"question": question, "image_id": image_id, "question_id": k})
            annotations.append({"question_id": k, "image_id": image_id, "question_type": "other",
                                "answers": records, "multiple_choice_answer": records[0]["answer"]})
        _write(base / f"{split}_questions_vqa_format.json", {**head, "data_type": "VizWiz", "questions": questions})
        _write(base / f"{split}_annotations_vqa_format.json", {**head, "annotations": annotations})
    return base


def make_okvqa(root: Path, n: int = 6) -> Path:
    """OK-VQA's files (answer = stem, raw_answer = words, answer_id) + okvqa/val2014 COCO images."""
    base = root / "okvqa"
    raw = ["apples", "apple", "apples", "rolling", "roll", "apples", "apple", "rolling", "red apples", "apples"]
    stems = ["apple", "apple", "apple", "roll", "roll", "apple", "apple", "roll", "red apple", "apple"]
    for split, count in (("val", n), ("train", 3)):
        questions, annotations = [], []
        for k in range(count):
            image_id = 9000 + k
            if split == "val":
                _image(base / "val2014" / f"COCO_val2014_{image_id:012d}.jpg", k)
            questions.append({"image_id": image_id, "question": f"What fruit is {k} like?",
                              "question_id": 10 * image_id})
            annotations.append({"image_id": image_id, "answer_type": "other", "question_type": "five",
                                "question_id": 10 * image_id, "confidence": 3,
                                "answers": [{"answer_id": j + 1, "raw_answer": r, "answer_confidence": "yes",
                                             "answer": s} for j, (r, s) in enumerate(zip(raw, stems))]})
        _write(base / f"OpenEnded_mscoco_{split}2014_questions.json", {"questions": questions})
        _write(base / f"mscoco_{split}2014_annotations.json", {"annotations": annotations})
    return base


def test_readers_read_the_reference_layouts(tmp_path):
    from bench.vlm.flamingo import FLAMINGO_PROMPTS
    from bench.vlm.llava import LLAVA_PROMPTS
    from bench.vlm.tiny_llava import PROMPTS as TINY_PROMPTS
    from tasks.vlm_datasets import VLM_DATASETS

    make_vizwiz(tmp_path, n=12)
    make_okvqa(tmp_path, n=12)
    vizwiz = VLM_DATASETS.get("vizwiz").value.read("vizwiz", tmp_path)
    okvqa = VLM_DATASETS.get("ok_vqa").value.read("okvqa", tmp_path)
    assert vizwiz.images["3"] == tmp_path / "vizwiz" / "val" / "VizWiz_val_00000003.jpg"
    assert okvqa.images["90030"] == tmp_path / "okvqa" / "val2014" / "COCO_val2014_000000009003.jpg"
    assert vizwiz.items["0"].answer_type == "other"  # VQAEval's default where the file has none
    # prepare_eval_samples: np.random.seed(42), choice of n over the file's order, whatever --seed
    np.random.seed(42)
    chosen = np.random.choice(12, 5, replace=False)
    for task in (vizwiz, okvqa):
        assert task.sample_ids(5, seed=3) == [task.ids[k] for k in chosen]
        assert task.max_new_tokens(TINY_PROMPTS) == 5 and task.max_answers == 5
        assert task.extra_targets == ("maybe", "Word")
    assert vizwiz.settings == {"vqa_metric": "openflamingo", "max_answers": 5, "answer_tokens": 5,
                               "selection_seed": 42, "postprocess": "robustvlm"}
    assert okvqa.settings == {**vizwiz.settings, "stemming_data": "nltk"}  # nltk's search path: the user's data
    # the attacked answers: the most common first (Counter over the file's answers)
    assert vizwiz.attack_targets(["0", "1"]) == [["unanswerable", "blank"], ["red 1", "red", "unanswerable"]]
    assert okvqa.attack_targets(["90000"]) == [["apple", "roll", "red apple"]]
    # RobustVLM's LLaVA prompt for VizWiz; OK-VQA gets the short-answer prompt (Sim-CLIP's llava.py;
    # RobustVLM's has none)
    assert vizwiz.prompts(["0"], LLAVA_PROMPTS) == [
        ("What colour is thing 0?\nWhen the provided information is insufficient, respond with 'Unanswerable'.\n"
         "Answer the question using a single word or phrase.")]
    assert okvqa.prompts(["90000"], LLAVA_PROMPTS) == [
        "What fruit is 0 like?\nAnswer the question using a single word or phrase."]
    # OpenFlamingo: two text-only demonstrations from the training split (first answer, colons removed)
    (prompt,) = vizwiz.prompts(["0"], FLAMINGO_PROMPTS)
    assert prompt.endswith("<image>Question:What colour is thing 0? Short answer:")
    demos = re.findall(r"Question:Is thing (\d) a train\? Short answer:([^<]*)<\|endofchunk\|>", prompt)
    assert len(demos) == 2 and all(answer == ("unanswerable" if int(k) % 2 == 0 else f"red {k}") for k, answer in demos)
    assert vizwiz.postprocess("Unanswerable, sorry Question: x") == "Unanswerable"  # postprocess_vqa_generation


def test_textvqa_files_without_answer_type_read_as_other(tmp_path):
    """OpenFlamingo's TextVQA files (textvqa/*_vqa_format.json) have no answer_type; its evaluator
    reads "other" (VQAEval.evaluate), and so do read_vqa and the paper suite's textvqa reader."""
    from tasks.vlm_datasets import VLM_DATASETS
    from tasks.vqa import read_vqa

    base = tmp_path / "textvqa"
    for split in ("val", "train"):
        questions, annotations = [], []
        for k in range(3):
            image_id = f"{split}{k:012x}"
            if split == "val":
                _image(base / "train_images" / f"{image_id}.jpg", k)
            questions.append({"image_id": image_id, "question": f"what does sign {k} say?", "question_id": 40 + k})
            annotations.append({"image_id": image_id, "question_id": 40 + k, "question_type": "what does",
                                "answers": [{"answer": "stop", "answer_confidence": "yes", "answer_id": j + 1}
                                            for j in range(10)]})
        _write(base / f"{split}_questions_vqa_format.json", {"questions": questions})
        _write(base / f"{split}_annotations_vqa_format.json", {"annotations": annotations})
    items = read_vqa(base / "val_questions_vqa_format.json", base / "val_annotations_vqa_format.json")
    assert [it.answer_type for it in items] == ["other"] * 3 and items[0].answers == ["stop"] * 10
    task = VLM_DATASETS.get("textvqa").value.read("textvqa", tmp_path)
    assert task.items["41"].answer_type == "other" and task.images["41"].is_file()
    # an answer_type that is there must still be a string
    _edit(base / "val_annotations_vqa_format.json", lambda d: d["annotations"][1].update(answer_type=3))
    with pytest.raises(BenchError, match=r"annotations\[1\] has 'answer_type' of type int"):
        read_vqa(base / "val_questions_vqa_format.json", base / "val_annotations_vqa_format.json")


@pytest.mark.parametrize("damage, message", [
    (lambda base: (base / "val_annotations_vqa_format.json").unlink(),
     "val_annotations_vqa_format.json does not exist"),
    (lambda base: (base / "val_questions_vqa_format.json").write_text("{not json"), "not valid JSON"),
    (lambda base: _edit(base / "val_annotations_vqa_format.json", lambda d: d["annotations"][2].update(answers=[])),
     r"annotations\[2\] has no answers"),
    (lambda base: _edit(base / "val_annotations_vqa_format.json",
                        lambda d: d["annotations"][1]["answers"][3].pop("answer")),
     r"annotations\[1\].answers\[3\] has no 'answer'"),
    (lambda base: _edit(base / "val_questions_vqa_format.json", lambda d: d["questions"][0].update(image_id=7)),
     "VizWiz image_id 7 is not a file name"),
])
def test_bad_vizwiz_files_are_one_line_exit_2_nothing_written(paper_setup, tmp_path, capsys, damage, message):
    damage(make_vizwiz(tmp_path / "data"))
    out = tmp_path / "out"
    code = main(["run", "--suite", "paper", "--data-root", str(tmp_path / "data"), "--encoder", str(paper_setup[1]),
                 "--vlm", f"llava:{paper_setup[2]}", "--task", "vizwiz", "--eps", "0", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(message, err), err
    assert not out.exists()


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


# ------------------------------------------------------------------ end to end on the paper path
@pytest.fixture(scope="module")
def paper_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    make_vizwiz(root / "data")
    make_okvqa(root / "data")
    checkpoint = fx.save_full_safetensors(fx.random_model(seed=0), root / "encoder.safetensors")
    return root / "data", checkpoint, make_llava(root / "llava")


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]


def _answered_by(annotations: Path, outputs: dict[str, str], records) -> dict[str, list[dict]]:
    """Rewrites the annotation file so that each sample's answers hold the VLM's clean output
    (a random VLM scores 0 on real answers, and an answer at 0 is not attacked); returns them by id."""
    data = json.loads(annotations.read_text())
    for a in data["annotations"]:
        if str(a["question_id"]) in outputs:
            a["answers"] = records(outputs[str(a["question_id"])])
    annotations.write_text(json.dumps(data))
    return {str(a["question_id"]): a["answers"] for a in data["annotations"]}


def test_paper_tasks_run_clean_and_under_apgd(paper_setup, nltk_data, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(paper_setup[0], data)
    checkpoint, llava = paper_setup[1:]
    out = tmp_path / "runs"
    argv = ["run", "--suite", "paper", "--data-root", str(data), "--encoder", str(checkpoint), "--vlm",
            f"llava:{llava}", "--task", "vizwiz,okvqa", "--n-samples", "3", "--batch-size", "3", "--out", str(out)]
    assert main([*argv, "--eps", "0"]) == 0
    clean = {json.loads((run / "config.json").read_text())["task"]: {r["id"]: r["clean_output"] for r in _records(run)}
             for run in (p.parent for p in out.rglob("config.json"))}
    before = {str(a["question_id"]): a["answers"] for name in ("vizwiz/val_annotations_vqa_format.json",
                                                               "okvqa/mscoco_val2014_annotations.json")
              for a in json.loads((data / name).read_text())["annotations"]}
    by_id = _answered_by(data / "vizwiz" / "val_annotations_vqa_format.json", clean["vizwiz"],
                         lambda out: _vizwiz_records((out, "yes", 4), (out, "maybe", 3), ("something else", "no", 3)))
    by_id |= _answered_by(data / "okvqa" / "mscoco_val2014_annotations.json", clean["okvqa"], lambda out: [
        {"answer_id": j + 1, "raw_answer": out, "answer_confidence": "yes", "answer": out if j < 6 else "x"}
        for j in range(10)])
    assert main([*argv, "--attack", "apgd", "--eps", "64/255", "--steps", "3"]) == 0
    runs = sorted(p.parent for p in out.rglob("config.json"))
    assert len(runs) == 4
    attacked = []
    for run in runs:
        config = json.loads((run / "config.json").read_text())
        assert config["task_settings"]["vqa_metric"] == "openflamingo" and config["protocol"] == "robustvlm"
        records = _records(run)
        assert len(records) == 3
        for r in records:
            # the recorded output is the cleaned one; its score is OpenFlamingo's evaluator's on the file's records
            for side in ("clean", "adv"):
                expected = 100 * _reference_accuracy(r[f"{side}_output"], (by_id if config["eps"] else before)[r["id"]])
                assert r[f"{side}_score"] == pytest.approx(expected, abs=1e-5)
            if config["task"] == "okvqa":
                assert r["clean_output"] == _reference_postprocess(r["clean_output"])  # stems are fixed points here
            assert r["adv_score"] <= r["clean_score"]
            if config["eps"] > 0:
                assert r["clean_score"] > 0  # every sample was attacked
                attacked.append(r["winner"] != "clean")
    assert any(attacked)  # some pass changed an answer


def test_okvqa_without_nltk_data_stops_before_any_run(paper_setup, no_nltk_data, tmp_path, capsys):
    data, checkpoint, llava = paper_setup
    out = tmp_path / "runs"
    code = main(["run", "--suite", "paper", "--data-root", str(data), "--encoder", str(checkpoint), "--vlm",
                 f"llava:{llava}", "--task", "okvqa", "--n-samples", "2", "--eps", "0", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "python -m nltk.downloader punkt_tab averaged_perceptron_tagger_eng wordnet" in err
    assert not out.exists()


# ------------------------------------------------------------------ the tiny world's versions
@pytest.fixture(scope="module")
def tiny_parts(tmp_path_factory):
    from bench.tiny import knowledge, nltk_data, unanswerable

    root = tmp_path_factory.mktemp("tiny")
    for write in (knowledge.write_split, unanswerable.write_split):
        for split, n in (("val", 200), ("train", 20)):
            for _ in write(root, 0, split, n):
                pass
    for _ in nltk_data.write(root, 0):  # tiny-okvqa's stemming data
        pass
    return root


def test_tiny_vizwiz_asks_what_the_scene_cannot_answer(tiny_parts):
    from bench.suites import get_suite

    task = get_suite("tiny").vlm_datasets.get("tiny-vizwiz").value.read("tiny-vizwiz", tiny_parts)
    assert len(task.ids) == 200 and all(task.images[i].is_file() for i in task.ids[:5])
    annotations = json.loads((tiny_parts / "vizwiz" / "val_annotations_vqa_format.json").read_text())["annotations"]
    assert all(set(r) == {"answer", "answer_confidence"} for a in annotations for r in a["answers"])  # OF's format
    assert all("answer_type" not in a and a["image_id"].endswith(".jpg") for a in annotations)
    unanswerable = [a for a in annotations if a["question_type"] == "unanswerable"]
    assert 0.3 < len(unanswerable) / len(annotations) < 0.5
    assert all(sum(r["answer"] == "unanswerable" for r in a["answers"]) >= 5 for a in unanswerable)
    assert not any(r["answer"] == "unanswerable" for a in annotations if a not in unanswerable for r in a["answers"])
    assert task.settings["vqa_metric"] == "openflamingo" and task.prompt_key == "vizwiz"
    # a sign is asked about only where there is none, or read where there is one
    questions = {q["question_id"]: q["question"] for q in json.loads(
        (tiny_parts / "vizwiz" / "val_questions_vqa_format.json").read_text())["questions"]}
    assert {"what does the sign say?"} < set(questions.values())


def test_tiny_okvqa_stems_are_the_stemmers_and_its_answers_need_them(tiny_parts, nltk_data):
    from bench.suites import get_suite
    from bench.tiny import knowledge
    from tasks.okvqa import stem_answer

    for raw, stem in knowledge.stems().items():
        assert stem_answer(raw, tiny_parts / "nltk_data") == stem_answer(raw) == stem == _reference_postprocess(raw), raw
    task = get_suite("tiny").vlm_datasets.get("tiny-okvqa").value.read("tiny-okvqa", tiny_parts)
    assert len(task.ids) == 200 and task.reference_postprocess
    assert task.settings["stemming_data"] == "tiny-world lexicon" and task.stemming_folder == tiny_parts / "nltk_data"
    annotations = json.loads((tiny_parts / "okvqa" / "mscoco_val2014_annotations.json").read_text())["annotations"]
    inflected = sum(r["raw_answer"] != r["answer"] for a in annotations for r in a["answers"])
    assert inflected > 300  # of 2000 answers: stemming matters
    # an inflected answer earns credit only through the stemming
    apples = next(i for i, a in zip(task.ids, annotations) if "apple" in [r["answer"] for r in a["answers"]][:1])
    score = task.scorer([apples])
    assert score({apples: task.postprocess("apples")})[apples] > 0 == score({apples: "apples"})[apples]


def test_new_words_are_exactly_those_tiny_llava_lacks(tiny_parts):
    from bench.tiny import knowledge, unanswerable
    from bench.tiny.tokenizer import vocabulary
    from bench.vlm.text import WordCodec
    from bench.vlm.tiny_llava import EXTRA_WORDS

    known = set(vocabulary()) | set(EXTRA_WORDS)
    for module, folder, question_file, annotation_file in (
            (knowledge, "okvqa", "OpenEnded_mscoco_{}2014_questions.json", "mscoco_{}2014_annotations.json"),
            (unanswerable, "vizwiz", "{}_questions_vqa_format.json", "{}_annotations_vqa_format.json")):
        words = set()
        for split in ("val", "train"):
            base = tiny_parts / folder
            words |= {w for q in json.loads((base / question_file.format(split)).read_text())["questions"]
                      for w in WordCodec.words(q["question"])}
            words |= {w for a in json.loads((base / annotation_file.format(split)).read_text())["annotations"]
                      for r in a["answers"] for key in ("answer", "raw_answer") if key in r
                      for w in WordCodec.words(r[key])}
        if module is knowledge:  # every form of the fact table, written or not in these splits
            words |= {w for raw, stem in knowledge.stems().items() for w in WordCodec.words(f"{raw} {stem}")}
        assert set(module.NEW_WORDS) == words - known, module.__name__
