"""nltk's data for the OK-VQA stemmer in the tests: the tiny world's, plus the tests' own words.

punkt_tab, averaged_perceptron_tagger_eng and wordnet cannot be downloaded here, and no
PyPI package ships them. The tests build theirs with the project's builder
(bench/tiny/nltk_data.py write_nltk_data, the one the tiny world's own data comes from): the
tiny world's lexicon and verbs, plus the words below, which the transcription tests stem.
"""
from __future__ import annotations

from pathlib import Path

from bench.tiny.knowledge import LEXICON, VERB_LEMMAS
from bench.tiny.nltk_data import write_nltk_data

# A word's tag when nltk.pos_tag meets it: words the tiny lexicon does not hold.
TAGS = {
    # plural nouns (NNS / NNPS): inflection.singularize
    "cherries": "NNS", "lemons": "NNS", "sides": "NNS", "plums": "NNS", "tomatoes": "NNS", "strawberries": "NNS",
    "Vegas": "NNPS", "wheels": "NNS", "edges": "NNS",
    # the manual table's words, whatever their tag
    "leaves": "VBZ", "clothes": "NNS", "riding": "VBG", "dining": "NN", "police": "NNS", "christmas": "NN",
    "tennis": "NN", "gloves": "NNS", "pies": "NNS",
    # -ing words: WordNet's verb lemmatiser
    "cutting": "VBG", "decorating": "VBG", "pointing": "VBG", "morning": "NN", "shining": "VBG", "counting": "VBG",
    # others
    "sky": "NN", "do": "VBP", "n't": "RB", "know": "VB", "its": "PRP$",
}
# WordNet verbs (index.verb) and irregular forms (verb.exc) the tests lemmatise beyond the tiny world's:
# a subset of WordNet 3.0's, so the lemmas are the real database's ("dining" -> "din", "shining" -> "shin")
VERBS = ("cut", "decorate", "point", "shine", "shin", "count", "ride", "rid", "din", "dine", "know", "do")
VERB_EXCEPTIONS = {"cutting": "cut"}  # as in WordNet 3.0's verb.exc ("riding" is not there: morphy gives "rid")


def make_nltk_data(root: Path) -> Path:
    """root/ as an nltk data folder (give it to nltk.data.path or NLTK_DATA)."""
    assert not set(TAGS) & set(LEXICON), "a test word the tiny lexicon tags already"
    return write_nltk_data(root, {**LEXICON, **TAGS}, [*VERB_LEMMAS.values(), *VERBS], VERB_EXCEPTIONS)
