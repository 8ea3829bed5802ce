"""AG-News zero-shot text classification, as LEAF's eval_zero_shot_text.py runs it (its default dataset).

Reference: LEAF (LIONS-EPFL/LEAF), data_AT.py `get_text_classification_dataset('fancyzhx/ag_news',
n_samples=1000, test=True)` and utils_AT.py `get_vocabulary`.

* Data: the Hugging Face dataset fancyzhx/ag_news as `git clone` of its hub repository leaves it
  under the data root: `ag_news/data/{test,train}-00000-of-00001.parquet`, columns `text` and
  `label` (0 World, 1 Sports, 2 Business, 3 Sci/Tech).
* Sentences: the first n rows of the test split in file order (LEAF's `indices = range(n_test)`),
  not the seeded subset other tasks draw; a sample's id is its row index in the test file.
* Class embeddings: LEAF's four pictures `imgs/{politics,sports,business,technology}-0.jpeg`
  (ag-news; LEAF's default `--label_encoder image`), which ship with LEAF's code and are copied
  into `ag_news/imgs/`, or its four captions (ag-news-captions; `--label_encoder text`).
* The attack's characters: every character of the train split's texts (get_vocabulary: the set of
  their code points, beside the delete operator charmer always has), sorted by code point so the
  set is the same string on every run; `--attack-args '{"alphabet": ...}'` overrides it.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchutil.errors import BenchError
from tasks.text_attack import TaskAlphabet
from tasks.text_classification import (
    CAPTIONS,
    IMAGES,
    TextClassificationData,
    TextClassificationTask,
)

FOLDER = "ag_news"  # under the data root
TEST_FILE = Path("data") / "test-00000-of-00001.parquet"
TRAIN_FILE = Path("data") / "train-00000-of-00001.parquet"
PICTURES = Path("imgs")
CLONE = "git clone https://huggingface.co/datasets/fancyzhx/ag_news"
LEAF_PICTURES = "https://github.com/LIONS-EPFL/LEAF/tree/main/imgs"

# In label order (the dataset card's 0..3), with LEAF's picture and caption of each class.
CLASSNAMES = ["World", "Sports", "Business", "Sci/Tech"]
CLASS_PICTURES = ["politics-0.jpeg", "sports-0.jpeg", "business-0.jpeg", "technology-0.jpeg"]
CLASS_CAPTIONS = ["World News", "Sports News", "Business News", "Science and Technology News"]

SOURCE = f"fancyzhx/ag_news {TEST_FILE.as_posix()}: the first n rows in file order (LEAF's range(n_test))"
ALPHABET_SOURCE = (f"every character of {TRAIN_FILE.as_posix()}'s texts, sorted by code point (LEAF's "
                   "get_vocabulary), unless --attack-args sets alphabet")


class AGNewsTask(TextClassificationTask):
    """LEAF's sample set: the first n sentences of the test split, whatever the seed."""

    def sample_ids(self, n: int | None, seed: int) -> list[str]:
        return list(self.data.ids if n is None else self.data.ids[:n])


def read_split(folder: Path, file: Path) -> pd.DataFrame:
    """One split's `text` and `label` columns, in file order; one line naming any defect and its fix."""
    path = folder / file
    if not path.is_file():
        raise BenchError(f"AG-News file {path} does not exist; clone the dataset under the data root: "
                         f"{CLONE} {folder}")
    try:
        frame = pd.read_parquet(path, columns=["text", "label"])
    except ImportError:
        raise BenchError("reading AG-News's parquet files needs pyarrow: pip install pyarrow") from None
    except (ValueError, OSError, KeyError) as err:  # pyarrow: ArrowInvalid is a ValueError, ArrowIOError an OSError
        first_line = (str(err).splitlines() or [""])[0]
        raise BenchError(f"cannot read {path} as parquet with columns text and label ({type(err).__name__}: "
                         f"{first_line}); a Git LFS pointer? run `git lfs pull` in {folder}; another dataset? "
                         f"clone again: {CLONE} {folder}") from None
    bad_text = frame["text"].map(lambda t: not isinstance(t, str))
    if bad_text.any():
        raise BenchError(f"{path}: row {int(bad_text.idxmax())} has no text; clone the dataset again: {CLONE} {folder}")
    labels = set(frame["label"].tolist())
    if not labels <= set(range(len(CLASSNAMES))):
        raise BenchError(f"{path}: labels {sorted(labels - set(range(len(CLASSNAMES))))} are not AG-News classes "
                         f"0-{len(CLASSNAMES) - 1}; is this fancyzhx/ag_news?")
    return frame


def train_alphabet(texts: list[str]) -> TaskAlphabet:
    """The characters of the train texts, each once, sorted by code point."""
    characters = "".join(sorted(set("".join(texts))))
    if not characters:
        raise BenchError("AG-News's train split holds no text: the attack would have no characters to write")
    return TaskAlphabet(characters, ALPHABET_SOURCE)


def class_pictures(folder: Path) -> list[Path]:
    """LEAF's four class pictures, each checked to exist (they come from LEAF's repository)."""
    pictures = [folder / PICTURES / name for name in CLASS_PICTURES]
    for path in pictures:
        if not path.is_file():
            raise BenchError(f"AG-News class picture {path} does not exist; copy LEAF's imgs/{path.name} (and the "
                             f"other three: {', '.join(CLASS_PICTURES)}) from {LEAF_PICTURES} into {path.parent}")
    return pictures


def read_ag_news(name: str, root: Path, labels_from: str) -> AGNewsTask:
    """The whole test split (the run takes its first n), labelled from LEAF's pictures or captions."""
    folder = root / FOLDER
    test = read_split(folder, TEST_FILE)
    alphabet = train_alphabet(read_split(folder, TRAIN_FILE)["text"].tolist())
    pictures = class_pictures(folder) if labels_from == IMAGES else []
    data = TextClassificationData(name, [str(i) for i in range(len(test))], test["text"].tolist(),
                                  [int(y) for y in test["label"]], CLASSNAMES, labels_from, pictures,
                                  CLASS_CAPTIONS if labels_from == CAPTIONS else [], SOURCE, alphabet)
    return AGNewsTask(data)
