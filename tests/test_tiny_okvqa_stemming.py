"""tiny-okvqa stems with the tiny world's own nltk data: offline, in nltk's formats, from the
world's lexicon, with the stems the reference's calls give on the tests' nltk data; a user's
nltk data changes no tiny stem, and the tiny data never reaches the paper suite's okvqa.

This module runs in the tests' environment as it is: no real nltk data anywhere (each test that
needs the tests' nltk data sets nltk.data.path itself, for its own duration)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.tiny import knowledge, nltk_data, world
from bench.tiny.knowledge import LEXICON, VERB_LEMMAS
from bench.tiny.nltk_data import write_nltk_data
from benchutil.errors import BenchError
from tasks import okvqa
from tasks.okvqa_nltk import TAGGER, TAGGER_FILES, WORDNET, WORDNET_FILES, load
from tests import bench_fixtures as fx
from tests.nltk_fixtures import TAGS, make_nltk_data
from tests.test_vizwiz_okvqa import _reference_postprocess, make_okvqa
from tests.vlm_fixtures import make_llava

# The Penn Treebank tags nltk's English tagger gives
PTB_TAGS = set("""CC CD DT EX FW IN JJ JJR JJS LS MD NN NNS NNP NNPS PDT POS PRP PRP$ RB RBR RBS RP SYM TO UH VB VBD
VBG VBN VBP VBZ WDT WP WP$ WRB . , : `` '' ( ) # $""".split())
SYSTEM_WORDNET = Path("/usr/share/wordnet")  # Debian's wordnet-base: WordNet 3.0's database files


@pytest.fixture(scope="module")
def tiny_okvqa_world(tmp_path_factory):
    """tiny-okvqa's parts of the world (its files, its nltk data) with a manifest (what --data-root verifies)."""
    root = tmp_path_factory.mktemp("tiny-okvqa-world")
    for split, n in (("val", 200), ("train", 20)):
        for _ in knowledge.write_split(root, 0, split, n):
            pass
    for _ in nltk_data.write(root, 0):
        pass
    world._write_json(root / "manifest.json", {"version": world.VERSION, "seed": 0, "files": world.file_hashes(root)})
    return root


@pytest.fixture
def fresh_stemmers():
    """No stemmer loaded by another test (the search path's depends on nltk.data.path), none left behind."""
    okvqa._stemmer.cache_clear()
    yield
    okvqa._stemmer.cache_clear()


def _no_real_nltk_data() -> None:
    import nltk

    with pytest.raises(LookupError):
        nltk.data.find("taggers/averaged_perceptron_tagger_eng/")


def _tiny_words() -> set[str]:
    from bench.tiny import pope_scienceqa, unanswerable
    from bench.tiny.tokenizer import vocabulary
    from bench.vlm.tiny_llava import EXTRA_WORDS

    return ({w for w in vocabulary() if not w.startswith("<")} | set(EXTRA_WORDS) | set(knowledge.NEW_WORDS)
            | set(unanswerable.NEW_WORDS) | set(pope_scienceqa.NEW_WORDS))


def _okvqa_texts(root: Path) -> list[str]:
    """Every question, raw answer and stem of the world's tiny-okvqa files."""
    texts = []
    for split in ("val", "train"):
        texts += [q["question"] for q in json.loads(
            (root / "okvqa" / f"OpenEnded_mscoco_{split}2014_questions.json").read_text())["questions"]]
        texts += [r[key] for a in json.loads((root / "okvqa" / f"mscoco_{split}2014_annotations.json").read_text())[
            "annotations"] for r in a["answers"] for key in ("raw_answer", "answer")]
    return sorted(set(texts))


def test_the_lexicon_tags_every_word_of_the_world_and_of_tiny_llava(tiny_okvqa_world):
    assert set(LEXICON) == _tiny_words() | {".", "?", ",", ":"}  # + the world's punctuation
    assert set(LEXICON.values()) <= PTB_TAGS
    assert {w for w in LEXICON if w.endswith("ing")} == set(VERB_LEMMAS)
    parts = load(tiny_okvqa_world / "nltk_data")
    assert parts.tag(sorted(LEXICON)) == sorted(LEXICON.items())  # the tag dictionary decides
    # every token of tiny-okvqa's questions and answers, as the stemmer's tokenizer cuts them, is in it
    assert {token for text in _okvqa_texts(tiny_okvqa_world) for token in parts.tokenize(text)} <= set(LEXICON)


def test_a_word_outside_the_lexicon_is_tagged_nn_by_the_models_prior(tiny_okvqa_world, tmp_path):
    folder = tiny_okvqa_world / "nltk_data"
    parts = load(folder)
    assert parts.tag(["zebras", "the", "jumping", "Apples"]) == [("zebras", "NN"), ("the", "DT"), ("jumping", "NN"),
                                                                 ("Apples", "NN")]
    # NN: not singularised; an "-ing" verb the tiny WordNet lacks keeps its form
    assert okvqa.stem_answer("zebras jumping", folder) == "zebras jumping"
    # without the prior, nltk's perceptron gives an unknown word the alphabetically last class of its
    # model (no class scores: its tie rule), a tag that depends on which tags the lexicon happens to use
    bare = write_nltk_data(tmp_path / "bare", LEXICON, VERB_LEMMAS.values())
    (bare / TAGGER / TAGGER_FILES[0]).write_text("{}")
    assert load(bare).tag(["zebras"]) == [("zebras", max({*LEXICON.values(), "NN"}))] == [("zebras", "WRB")]


def test_the_worlds_nltk_data_is_deterministic_in_nltks_formats(tmp_path):
    for name in ("a", "b"):
        for _ in nltk_data.write(tmp_path / name, 0):
            pass
    hashes = world.file_hashes(tmp_path / "a")
    assert hashes == world.file_hashes(tmp_path / "b")
    assert {f"nltk_data/{WORDNET}/{name}" for name in WORDNET_FILES} < set(hashes)
    root = tmp_path / "a" / "nltk_data"
    weights, tagdict, classes = (json.loads((root / TAGGER / name).read_text()) for name in TAGGER_FILES)
    assert tagdict == LEXICON and weights == {"bias": {"NN": 1.0}} and classes == sorted({*LEXICON.values(), "NN"})
    index = (root / WORDNET / "index.verb").read_text().splitlines()
    assert [line.split()[0] for line in index] == sorted(set(VERB_LEMMAS.values()))
    assert all(len(line.split()) == 7 and line.split()[1:6] == ["v", "1", "0", "1", "0"] for line in index)
    assert any(part.write is nltk_data.write for part in world._extra_parts())  # a part of every world


@pytest.mark.skipif(not (SYSTEM_WORDNET / "index.verb").is_file(),
                    reason="WordNet 3.0's database is not installed (Debian: apt install wordnet-base)")
def test_the_tiny_wordnets_lemmas_are_wordnet_30s(tmp_path):
    """The world's verbs and the tests' lemmatise as the whole WordNet 3.0 database does."""
    real = write_nltk_data(tmp_path / "real", {}, [])
    for name in WORDNET_FILES:  # (Debian ships no lexnames or index.sense: the builder's stay)
        if (SYSTEM_WORDNET / name).is_file():
            shutil.copyfile(SYSTEM_WORDNET / name, real / WORDNET / name)
            (real / WORDNET / name).chmod(0o644)
    real_lemma = load(real).verb_lemma
    world_lemma = load(write_nltk_data(tmp_path / "world", LEXICON, VERB_LEMMAS.values())).verb_lemma
    tests_lemma = load(make_nltk_data(tmp_path / "tests")).verb_lemma
    assert {w: real_lemma(w) for w in VERB_LEMMAS} == VERB_LEMMAS
    lemmatised = [w for w in [*LEXICON, *TAGS] if w.endswith("ing")]  # (the stemmer lemmatises "-ing" words only)
    assert all(world_lemma(w) == real_lemma(w) for w in lemmatised if w in LEXICON)
    assert all(tests_lemma(w) == real_lemma(w) for w in lemmatised)
    # the shortest of morphy's lemmas (why the manual table holds "riding" > "ride" and "dining" > "dine")
    assert [tests_lemma(w) for w in ("riding", "dining", "cutting")] == ["rid", "din", "cut"]


def test_tiny_stems_need_no_nltk_download_and_are_the_references_on_the_tests_data(tiny_okvqa_world, tmp_path,
                                                                                  fresh_stemmers):
    import nltk

    _no_real_nltk_data()  # the tests' environment: the tiny suite stems with its world's data alone
    folder = tiny_okvqa_world / "nltk_data"
    search_path = list(nltk.data.path)
    texts = [*_okvqa_texts(tiny_okvqa_world), *LEXICON, *knowledge.stems(), "red apples Question: what",
             "rolling, building", "4 corners Answer: 3 corners", "the circle is used for rolling."]
    tiny = {text: okvqa.postprocess_okvqa(text, folder) for text in texts}
    assert nltk.data.path == search_path  # loading the world's data left nltk's search path as it was
    assert all(tiny[raw] == stem for raw, stem in knowledge.stems().items())
    assert tiny["the circle is used for rolling."] == "the circle is used for roll ."
    # RobustVLM's calls (nltk.word_tokenize, nltk.pos_tag, WordNetLemmatizer) on the tests' data give the same stems
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nltk.data, "path", [str(make_nltk_data(tmp_path / "tests-data"))])
        assert {text: _reference_postprocess(text) for text in texts} == tiny


def test_a_users_nltk_data_changes_no_tiny_stem_and_the_tiny_data_never_reaches_the_paper_suite(
        tiny_okvqa_world, tmp_path, monkeypatch, fresh_stemmers):
    import nltk

    folder = tiny_okvqa_world / "nltk_data"
    user = write_nltk_data(tmp_path / "user", {"apples": "NN", "corners": "NN"}, [])  # a tagger that says otherwise
    monkeypatch.setattr(nltk.data, "path", [str(user)])
    assert okvqa.stem_answer("apples 4 corners", folder) == "apple 4 corner"
    assert okvqa.stem_answer("apples 4 corners") == "apples 4 corners"  # the paper suite: the user's data
    assert nltk.data.path == [str(user)]
    # with no data on nltk's search path, the paper suite asks for it, though the tiny data is loaded
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "empty")])
    okvqa._stemmer.cache_clear()
    assert okvqa.stem_answer("apples", folder) == "apple"
    with pytest.raises(BenchError, match=re.escape(okvqa.NLTK_DOWNLOAD)):
        okvqa.stem_answer("apples")
    assert nltk.data.path == [str(tmp_path / "empty")]


def test_a_world_without_its_nltk_data_is_one_line_naming_the_fix(tiny_okvqa_world, tmp_path, fresh_stemmers):
    old = tmp_path / "old-world"
    shutil.copytree(tiny_okvqa_world, old)
    shutil.rmtree(old / "nltk_data" / "corpora")
    with pytest.raises(BenchError, match=r"lacks nltk's wordnet data .* bench data tiny --out") as err:
        okvqa.stem_answer("apples", old / "nltk_data")
    assert "\n" not in str(err.value)


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(encoder checkpoint, llava-hf folder): random, tiny. tiny-llava's shipped weights are not used:
    its vocabulary is being extended to the new tasks' words, and its weights retrained, elsewhere."""
    root = tmp_path_factory.mktemp("models")
    return fx.save_full_safetensors(fx.random_model(seed=0), root / "encoder.safetensors"), make_llava(root / "llava")


def test_tiny_okvqa_runs_offline_and_the_paper_okvqa_still_asks_for_the_download(tiny_okvqa_world, models, tmp_path,
                                                                                  capsys, fresh_stemmers):
    import nltk

    _no_real_nltk_data()
    search_path = list(nltk.data.path)
    checkpoint, llava = models
    out = tmp_path / "runs"
    assert main(["run", "--suite", "tiny", "--data-root", str(tiny_okvqa_world), "--task", "tiny-okvqa",
                 "--encoder", str(checkpoint), "--vlm", f"llava:{llava}", "--eps", "0", "--n-samples", "4",
                 "--out", str(out)]) == 0
    (config_path,) = out.rglob("config.json")
    config = json.loads(config_path.read_text())
    assert config["task_settings"]["stemming_data"] == "tiny-world lexicon"
    records = _records(config_path.parent)
    assert len(records) == 4
    folder = tiny_okvqa_world / "nltk_data"
    assert all(okvqa.stem_answer(r["clean_output"], folder) == r["clean_output"] for r in records)  # stems recorded
    assert nltk.data.path == search_path
    # the paper suite's okvqa in the same environment: nltk's download, in one line, before any run
    data = tmp_path / "paper"
    make_okvqa(data)
    capsys.readouterr()
    code = main(["run", "--suite", "paper", "--data-root", str(data), "--encoder", str(checkpoint), "--vlm",
                 f"llava:{llava}", "--task", "okvqa", "--n-samples", "2", "--eps", "0",
                 "--out", str(tmp_path / "paper-runs")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert okvqa.NLTK_DOWNLOAD in err and not (tmp_path / "paper-runs").exists()
