"""The tiny world's own nltk data for OK-VQA's stemming, in nltk's formats:

    nltk_data/tokenizers/punkt_tab/english/{collocations.tab,sent_starters.txt,abbrev_types.txt,ortho_context.tab}
    nltk_data/taggers/averaged_perceptron_tagger_eng/averaged_perceptron_tagger_eng.{weights,tagdict,classes}.json
    nltk_data/corpora/wordnet/{lexnames,index.*,data.*,*.exc,index.sense,cntlist.rev}

nltk's punkt_tab, averaged_perceptron_tagger_eng and wordnet packages are a download no PyPI
package ships, so tiny-okvqa (which runs offline, in CI too) stems with these instead
(tasks/okvqa_nltk.py loads them from this folder alone):

* Punkt: a model with no abbreviations, collocations or sentence starters (tiny answers are
  one sentence without periods).
* The perceptron tagger: its tag dictionary is the world's lexicon (bench/tiny/knowledge.py
  LEXICON), and nltk's PerceptronTagger tags a word of its tag dictionary with that tag, so a
  tiny word gets the part of speech the world gave it. Its model has one weight, the prior
  "bias" feature for NN: every word outside the lexicon is tagged NN, deterministically (with
  no weights at all nltk would give it the alphabetically last class, a tie rule).
* WordNet: a database in WordNet 3.0's file format (wndb(5WN), lexnames(5WN)) whose lemma index
  holds the verbs of the lexicon's "-ing" words with their real WordNet 3.0 lemmas
  (knowledge.VERB_LEMMAS) and whose exception list is empty, as WordNet's is for them: what
  nltk's morphy reads to lemmatise. It holds no synsets (the stemmer asks for none).

`write_nltk_data` is the one builder of such folders (the tests build theirs with it, plus the
words they need). Same words, same bytes: the manifest hashes every file.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from bench.tiny import knowledge
from tasks.okvqa import StemmingData
from tasks.okvqa_nltk import PUNKT, PUNKT_FILES, TAGGER, TAGGER_FILES, WORDNET, WORDNET_FILES

FOLDER = "nltk_data"
STEMMING_DATA_NAME = "tiny-world lexicon"  # what a tiny-okvqa run records as its "stemming_data"
UNKNOWN_WORD_TAG = "NN"  # the perceptron's prior: the tag of every word outside the tag dictionary
# WordNet 3.0's lexicographer files, in number order (lexnames(5WN)); nltk's reader reads their names
LEXNAMES = """adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body
noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive noun.object
noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation noun.shape
noun.state noun.substance noun.time verb.body verb.change verb.cognition verb.communication verb.competition
verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception verb.possession verb.social
verb.stative verb.weather adj.ppl""".split()
SYNTACTIC_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    # nltk (3.10's pathsec) refuses a data file others can write: not left to the umask
    os.chmod(path, 0o644)


def write_nltk_data(root: Path, tags: Mapping[str, str], verbs: Iterable[str],
                    verb_exceptions: Mapping[str, str] | None = None) -> Path:
    """root/ as an nltk data folder: a tagger whose tag dictionary is `tags` (word -> Penn
    Treebank tag; any other word NN), a WordNet whose verbs are `verbs` with the irregular forms
    `verb_exceptions` (form -> lemma, WordNet's verb.exc), an empty Punkt model. Returns root."""
    for name in PUNKT_FILES:
        _write(root / PUNKT / name, "")
    weights, tagdict, classes = TAGGER_FILES
    _write(root / TAGGER / weights, json.dumps({"bias": {UNKNOWN_WORD_TAG: 1.0}}))
    _write(root / TAGGER / tagdict, json.dumps(dict(tags), sort_keys=True))
    _write(root / TAGGER / classes, json.dumps(sorted({*tags.values(), UNKNOWN_WORD_TAG})))
    wordnet = root / WORDNET
    files = dict.fromkeys(WORDNET_FILES, "")
    files["lexnames"] = "".join(f"{k:02d}\t{name}\t{SYNTACTIC_CATEGORY[name.split('.')[0]]}\n"
                                for k, name in enumerate(LEXNAMES))
    # index.verb: lemma pos synset_cnt p_cnt sense_cnt tagsense_cnt synset_offset (wndb(5WN)); one
    # sense each, numbered (no data.verb entry: no synsets)
    files["index.verb"] = "".join(f"{verb} v 1 0 1 0 {k + 1:08d}  \n" for k, verb in enumerate(sorted(set(verbs))))
    files["verb.exc"] = "".join(f"{form} {lemma}\n" for form, lemma in sorted((verb_exceptions or {}).items()))
    for name, text in files.items():
        _write(wordnet / name, text)
    return root


def write(out: Path, seed: int) -> Iterator[None]:
    """The world's part: out/nltk_data from the lexicon (no images, nothing random: `seed` unused)."""
    write_nltk_data(out / FOLDER, knowledge.LEXICON, knowledge.VERB_LEMMAS.values())
    yield from ()


def stemming_data(root: Path) -> StemmingData:
    """tiny-okvqa's stemming data: the world's own folder, alone."""
    return StemmingData(STEMMING_DATA_NAME, root / FOLDER)
