"""Where OK-VQA's stemmer gets nltk's tokenizer, tagger and WordNet: nltk's search path, or one folder alone.

The paper suite stems with the data the user downloaded (`python -m nltk.downloader punkt_tab
averaged_perceptron_tagger_eng wordnet`), found where nltk finds it (nltk.data.path), through the
very calls the reference makes: nltk.word_tokenize, nltk.pos_tag's PerceptronTagger and
WordNetLemmatizer. The tiny suite stems with its world's `nltk_data/` folder only
(bench/tiny/nltk_data.py writes it, in nltk's formats): the same nltk classes loaded from that
folder's explicit paths, so data a user installed never changes a tiny number, and the folder
never stays on nltk's search path, so it never reaches the paper suite.
"""
from __future__ import annotations

import contextlib
import json
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from benchutil.errors import BenchError

# nltk's data packages and the folder of each inside an nltk data folder (what nltk.word_tokenize,
# nltk.pos_tag and nltk.corpus.wordnet look up)
PUNKT = "tokenizers/punkt_tab/english"
TAGGER = "taggers/averaged_perceptron_tagger_eng"
WORDNET = "corpora/wordnet"
PACKAGES = {"punkt_tab": PUNKT, "averaged_perceptron_tagger_eng": TAGGER, "wordnet": WORDNET}
# what nltk.data.find is asked for each (a folder, or on find's second try the package's zip file)
_SEARCHED = {"punkt_tab": PUNKT + "/", "averaged_perceptron_tagger_eng": TAGGER + "/", "wordnet": WORDNET}
# The files each package's reader opens: load_punkt_params, PerceptronTagger.load_from_json and
# WordNetCorpusReader (its _FILES)
PUNKT_FILES = ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab")
TAGGER_FILES = tuple(f"averaged_perceptron_tagger_eng.{part}.json" for part in ("weights", "tagdict", "classes"))
WORDNET_FILES = ("cntlist.rev", "lexnames", "index.sense", "index.adj", "index.adv", "index.noun", "index.verb",
                 "data.adj", "data.adv", "data.noun", "data.verb", "adj.exc", "adv.exc", "noun.exc", "verb.exc")
PACKAGE_FILES = {"punkt_tab": PUNKT_FILES, "averaged_perceptron_tagger_eng": TAGGER_FILES, "wordnet": WORDNET_FILES}


@dataclass(frozen=True)
class NltkParts:
    """The three nltk steps of OKVQAStemmer.stem."""

    tokenize: Callable[[str], list[str]]  # nltk.tokenize.word_tokenize
    tag: Callable[[list[str]], list[tuple[str, str]]]  # nltk.pos_tag
    verb_lemma: Callable[[str], str]  # WordNetLemmatizer().lemmatize(word, VERB)


def missing_packages(folder: Path | None) -> list[str]:
    """The packages nltk's search path (folder None) or the folder lacks (a file of one missing)."""
    if folder is None:
        import nltk

        missing = []
        for package, resource in _SEARCHED.items():
            try:
                nltk.data.find(resource)
            except LookupError:
                missing.append(package)
        return missing
    return [package for package, resource in PACKAGES.items()
            if not all((folder / resource / name).is_file() for name in PACKAGE_FILES[package])]


def load(folder: Path | None) -> NltkParts:
    """nltk's parts from its search path, or from `folder` alone (explicit paths)."""
    return _from_search_path() if folder is None else _from_folder(folder)


def _from_search_path() -> NltkParts:
    import nltk
    from nltk.corpus.reader import VERB
    from nltk.stem import WordNetLemmatizer
    from nltk.tag.perceptron import PerceptronTagger

    lemmatiser = WordNetLemmatizer()
    # nltk.pos_tag(tokens) is PerceptronTagger().tag(tokens) (English, no tagset); it rereads the
    # model on every call, so one tagger is kept.
    tagger = PerceptronTagger()
    return NltkParts(nltk.tokenize.word_tokenize, tagger.tag, lambda word: lemmatiser.lemmatize(word, VERB))


def _from_folder(folder: Path) -> NltkParts:
    """The same nltk classes the search-path parts use, each given its folder's path (never
    nltk.data.find): Punkt's parameters, the perceptron's json model, WordNet's database."""
    from nltk.corpus.reader import VERB
    from nltk.corpus.reader.wordnet import WordNetCorpusReader
    from nltk.data import FileSystemPathPointer
    from nltk.tag.perceptron import PerceptronTagger
    from nltk.tokenize.destructive import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer, load_punkt_params

    folder = folder.resolve()
    try:
        with _readable_by_nltk(folder), warnings.catch_warnings():
            # a reader without the Open Multilingual Wordnet says so: English is all OK-VQA needs
            warnings.filterwarnings("ignore", message="The multilingual functions are not available")
            sentences = PunktSentenceTokenizer(load_punkt_params(FileSystemPathPointer(str(folder / PUNKT))))
            wordnet = WordNetCorpusReader(FileSystemPathPointer(str(folder / WORDNET)), None)
        model = tuple(json.loads((folder / TAGGER / name).read_text(encoding="utf-8")) for name in TAGGER_FILES)
        tagger = PerceptronTagger.decode_json_obj(model)
    except (OSError, ValueError, LookupError) as err:  # PermissionError (nltk's sandbox) is an OSError
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BenchError(f"nltk cannot read the OK-VQA stemming data in {folder} ({reason}); "
                         "its files must be yours and not writable by others (chmod -R go-w), or write the "
                         "tiny world again (bench data tiny --out DIR)") from None
    words = NLTKWordTokenizer()

    def tokenize(text: str) -> list[str]:  # nltk.word_tokenize: Punkt's sentences, then the Treebank words
        return [token for sentence in sentences.tokenize(text) for token in words.tokenize(sentence)]

    def verb_lemma(word: str) -> str:  # WordNetLemmatizer.lemmatize: the shortest of morphy's lemmas
        lemmas = wordnet._morphy(word, VERB)
        return min(lemmas, key=len) if lemmas else word

    return NltkParts(tokenize, tagger.tag, verb_lemma)


_SEARCH_PATH_LOCK = threading.Lock()


@contextlib.contextmanager
def _readable_by_nltk(folder: Path) -> Iterator[None]:
    """nltk (3.10's `pathsec`) opens a data file only beneath a folder of nltk.data.path: "a
    corpus in a custom location is authorised by registering it on nltk.data.path". The folder is
    registered while its readers load, first (WordNet's reader also looks the corpus named
    "wordnet" up on the search path, for its multilingual mapping: it then finds this folder's),
    and removed as soon as they have: what they read stays in memory, and no lookup made
    outside this block, by the paper suite or anyone, can find the folder."""
    import nltk

    entry = str(folder)
    with _SEARCH_PATH_LOCK:
        nltk.data.path.insert(0, entry)
        try:
            yield
        finally:
            nltk.data.path.remove(entry)  # the first occurrence: the one inserted above
