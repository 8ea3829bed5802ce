"""AG-News (LEAF's zero-shot text classification) on a small copy in the hub clone's real layout:
parquet files written with pandas + pyarrow and four JPEG class pictures. The reader's order and
labels, the train-split alphabet, `bench run` on the paper suite end to end, and the refusals."""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from attacks.charmer import DEFAULT_ALPHABET, levenshtein
from attacks.table import TABLE
from bench.cli.main import main
from bench.suites import get_suite, load_task
from tasks.base import AttackSettings
from tasks.record_checks import violations
from tasks.text_agnews import CLASS_CAPTIONS, CLASS_PICTURES, TEST_FILE, TRAIN_FILE
from tasks.text_attack import TaskAlphabet, attack_sentence
from tests import bench_fixtures as fx

# (label, sentence): 0 World, 1 Sports, 2 Business, 3 Sci/Tech, in the dataset's file order.
TEST_ROWS = [
    (2, "Stocks rose on Wall Street as oil prices fell for a third straight day."),
    (3, "NASA's new probe sent its first pictures of the outer moons back to Earth."),
    (1, "The home team won the final in extra time after a late penalty."),
    (0, "Leaders met in Geneva to discuss a ceasefire along the disputed border."),
    (3, "A software maker released a patch for a security flaw in its web browser."),
    (2, "The central bank held interest rates steady, citing slower growth."),
    (0, "Thousands marched in the capital to protest the election results."),
    (1, "The striker signed a three-year contract with the champions."),
    (2, "Shares of the airline dropped after it cut its profit forecast."),
    (3, "Researchers built a chip that uses half the power of its predecessor."),
    (1, "The veteran golfer took a two-shot lead into the last round."),
    (0, "The UN envoy called for aid to reach refugees before winter."),
]
TRAIN_ROWS = [
    (0, "Café owners in Zürich protest new rules — officials say talks continue."),
    (1, "Müller scores twice as Bayern beat rivals 3-1 in the cup."),
    (2, "The euro hit €1.30 against the dollar; exporters worry about margins."),
    (3, "Start-up unveils a phone with a 5-inch screen and faster processor."),
    (0, "Prime minister visits flood-hit towns, promises rebuilding funds."),
    (1, "Olympic sprinter breaks national record at the season's opener."),
    (2, "Retail sales jumped 2% in March, beating economists' forecasts."),
    (3, "Hackers exploited a bug in email software, experts warned (again)."),
]
N_RUN = 8


def write_ag_news(root: Path, pictures: bool = True) -> Path:
    """root/ag_news as the hub clone holds it, plus LEAF's four pictures (small JPEGs here)."""
    folder = root / "ag_news"
    for file, rows in ((TEST_FILE, TEST_ROWS), (TRAIN_FILE, TRAIN_ROWS)):
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"text": [t for _, t in rows], "label": [y for y, _ in rows]}).to_parquet(folder / file)
    if pictures:
        (folder / "imgs").mkdir()
        for colour, name in zip(["red", "green", "blue", "yellow"], CLASS_PICTURES):
            Image.new("RGB", (48, 40), colour).save(folder / "imgs" / name, "JPEG")
    return root


@pytest.fixture(scope="module")
def paper_data(tmp_path_factory):
    base = tmp_path_factory.mktemp("agnews")
    root = write_ag_news(base / "data")
    checkpoint = fx.save_full_safetensors(fx.random_model(seed=0), base / "tiny.safetensors")
    return root, checkpoint


def expected_alphabet(root: Path) -> str:
    """The train split's characters, read here with pandas alone (not through the reader)."""
    texts = pd.read_parquet(root / "ag_news" / TRAIN_FILE)["text"]
    return "".join(sorted({c for text in texts for c in text}))


def test_the_reader_takes_the_first_n_test_rows_in_order_with_labels_and_pictures(paper_data):
    root, _ = paper_data
    task = load_task(get_suite("paper"), "ag-news", str(root))
    ids = task.sample_ids(5, seed=0)
    assert ids == ["0", "1", "2", "3", "4"] == task.sample_ids(5, seed=123)  # LEAF's range(n), not a draw
    assert task.sample_ids(None, seed=7) == [str(i) for i in range(len(TEST_ROWS))]
    assert task.load(ids, 224) == [(t, y) for y, t in TEST_ROWS[:5]]
    assert task.data.labels_from == "images" and task.data.classnames == ["World", "Sports", "Business", "Sci/Tech"]
    assert task.data.class_images == [root / "ag_news" / "imgs" / n for n in
                                      ("politics-0.jpeg", "sports-0.jpeg", "business-0.jpeg", "technology-0.jpeg")]
    assert task.settings["sentences"].endswith("the first n rows in file order (LEAF's range(n_test))")
    captions = load_task(get_suite("paper"), "ag-news-captions", str(root))
    assert captions.data.labels_from == "captions" and captions.data.class_captions == CLASS_CAPTIONS
    assert captions.settings["class_labels"] == ["World News", "Sports News", "Business News",
                                                 "Science and Technology News"]


def test_the_attack_alphabet_is_the_train_splits_characters_sorted(paper_data):
    root, _ = paper_data
    task = load_task(get_suite("paper"), "ag-news", str(root))
    alphabet = expected_alphabet(root)
    assert task.data.alphabet.characters == alphabet
    assert {"é", "ü", "—", "€"} <= set(alphabet) and not {"~", "|", "^", "Q"} & set(alphabet)
    assert task.settings["alphabet"]["size"] == len(alphabet)
    assert task.settings["alphabet"]["sha256"] == hashlib.sha256(alphabet.encode("utf-8")).hexdigest()
    tiny = load_task(get_suite("tiny"), "tiny-text-topics", None)
    assert tiny.data.alphabet is None and "alphabet" not in tiny.settings  # the tiny tasks keep charmer's own


def test_a_task_alphabet_is_written_unless_the_attack_arguments_name_one():
    """A loss that rewards one character the default alphabet lacks: the attack finds it only when the
    task's alphabet reaches charmer, and not when --attack-args names another alphabet."""
    assert "é" not in DEFAULT_ALPHABET

    def loss(candidates: list[str]) -> torch.Tensor:
        return torch.tensor([float(c.count("é")) for c in candidates])

    def is_broken(candidates: list[str]) -> torch.Tensor:
        return torch.tensor(["é" in c for c in candidates])

    task_alphabet = TaskAlphabet("abeé", "test")
    settings = AttackSettings(TABLE["charmer"], 1.0, "levenshtein", 1, 0)
    text, distance = attack_sentence("cafe", loss, is_broken, settings, task_alphabet)
    assert "é" in text and distance == levenshtein("cafe", text) == 1
    user = AttackSettings(TABLE["charmer"], 1.0, "levenshtein", 1, 0, {"alphabet": "xyz"})
    text, _ = attack_sentence("cafe", loss, is_broken, user, task_alphabet)
    assert "é" not in text and set(Counter(text) - Counter("cafe")) <= set("xyz")
    text, _ = attack_sentence("cafe", loss, is_broken, settings)  # no task alphabet: charmer's default
    assert "é" not in text
    with pytest.raises(ValueError, match="sorted by code point"):
        TaskAlphabet("ba", "unsorted")


def test_bench_run_attacks_the_first_sentences_with_train_characters_within_k(paper_data, tmp_path):
    root, checkpoint = paper_data
    out = tmp_path / "runs"
    assert main(["run", "--suite", "paper", "--data-root", str(root), "--encoder", str(checkpoint),
                 "--task", "ag-news", "--attack", "charmer", "--norm", "levenshtein", "--eps", "0,1",
                 "--n-samples", str(N_RUN), "--batch-size", "4", "--out", str(out)]) == 0
    assert main(["run", "--suite", "paper", "--data-root", str(root), "--encoder", str(checkpoint),
                 "--task", "ag-news-captions", "--attack", "charmer", "--norm", "levenshtein", "--eps", "0",
                 "--n-samples", str(N_RUN), "--out", str(out)]) == 0
    runs = fx.runs_of(out)
    assert set(runs) == {"ag-news clean", "ag-news 1", "ag-news-captions clean"}
    alphabet = set(expected_alphabet(root))
    accuracy, edited = {}, 0
    for key, (config, records) in runs.items():
        assert config["sample_ids"] == [str(i) for i in range(N_RUN)]
        assert [r["clean_text"] for r in sorted(records, key=lambda r: int(r["id"]))] == \
            [t for _, t in TEST_ROWS[:N_RUN]]
        assert config["task_settings"]["alphabet"]["sha256"] == \
            hashlib.sha256("".join(sorted(alphabet)).encode("utf-8")).hexdigest()
        k = int(config["eps"])
        for r in records:
            assert not violations(r, config["eps"], config["norm"])
            assert r["distance"] == levenshtein(r["clean_text"], r["adv_text"]) <= k
            written = Counter(r["adv_text"]) - Counter(r["clean_text"])  # what an insertion or substitution wrote
            assert set(written) <= alphabet, (r["adv_text"], set(written) - alphabet)
            edited += r["adv_text"] != r["clean_text"]
        accuracy[key] = (sum(r["clean_score"] for r in records), sum(r["adv_score"] for r in records))
    assert edited > 0  # the attack really ran: some sentence was classified right and edited
    assert accuracy["ag-news 1"][1] <= accuracy["ag-news 1"][0] == accuracy["ag-news clean"][0]
    assert accuracy["ag-news-captions clean"][0] == accuracy["ag-news-captions clean"][1]
    assert runs["ag-news-captions clean"][0]["task_settings"]["labels_from"] == "captions"


@pytest.mark.parametrize("missing, message", [
    (TEST_FILE, ("test-00000-of-00001.parquet does not exist; clone the dataset under the data root: git clone "
                 "https://huggingface.co/datasets/fancyzhx/ag_news")),
    (TRAIN_FILE, "train-00000-of-00001.parquet does not exist"),
    (Path("imgs") / "business-0.jpeg", "business-0.jpeg does not exist; copy LEAF's imgs/business-0.jpeg"),
])
def test_a_missing_file_is_one_line_exit_2_naming_it(tmp_path, capsys, missing, message):
    root = write_ag_news(tmp_path / "data")
    (root / "ag_news" / missing).unlink()
    checkpoint = fx.save_full_safetensors(fx.random_model(seed=0), tmp_path / "tiny.safetensors")
    out = tmp_path / "runs"
    code = main(["run", "--suite", "paper", "--data-root", str(root), "--encoder", str(checkpoint), "--task",
                 "ag-news", "--attack", "charmer", "--norm", "levenshtein", "--eps", "1", "--n-samples", "2",
                 "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert message in err and str(root / "ag_news" / missing) in err, err
    assert not out.exists()


def test_captions_need_no_pictures_and_a_file_that_is_not_parquet_is_named(tmp_path, capsys):
    root = write_ag_news(tmp_path / "data", pictures=False)
    assert load_task(get_suite("paper"), "ag-news-captions", str(root)).data.class_images == []
    lfs_pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n"
    (root / "ag_news" / TEST_FILE).write_text(lfs_pointer)
    checkpoint = fx.save_full_safetensors(fx.random_model(seed=0), tmp_path / "tiny.safetensors")
    code = main(["run", "--suite", "paper", "--data-root", str(root), "--encoder", str(checkpoint), "--task",
                 "ag-news-captions", "--attack", "charmer", "--norm", "levenshtein", "--eps", "0",
                 "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"cannot read {root / 'ag_news' / TEST_FILE} as parquet" in err and "git lfs pull" in err, err


def test_the_paper_suite_evaluates_1000_sentences_by_default():
    suite = get_suite("paper")
    assert suite.default_samples("ag-news") == suite.default_samples("ag-news-captions") == 1000
    assert {"ag-news", "ag-news-captions"} <= set(suite.text_datasets.names())
