"""OK-VQA's answer stemming: the output cleaning RobustVLM applies before the VQA metric.

OK-VQA's annotation files give each human answer's stem as `answer` (its words as
`raw_answer`), so a generated answer is stemmed the same way before it is scored. RobustVLM
(open_flamingo/eval/ok_vqa_utils.py, postprocess_ok_vqa_generation) cuts the output at
"Question", "Answer" or "Short", then stems it (OKVQAStemmer.stem): nltk's word_tokenize, then
per token (with nltk.pos_tag's tag): a word of the manual table below becomes its entry; else a
word ending in "ing" is lemmatised as a verb by WordNet; else a plural noun (tag NNS or NNPS)
is singularised by `inflection`; the tokens are joined with spaces. Unlike OpenFlamingo's later
version of the function, RobustVLM's does not also cut at the first ", ".

nltk needs three data packages that no PyPI package ships. The paper suite finds them on nltk's
search path (the user's download): a run without them asks for them in one line
(`require_nltk_data`). The tiny suite passes its world's own `nltk_data/` folder and the stemmer
uses that folder alone (`StemmingData`, tasks/okvqa_nltk.py): the same code with a lexicon tagger
for the tiny world's words in place of nltk's trained tagger. A stemmer without its data (no
tagger or no WordNet) would score other answers, so there is no fallback.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchutil.errors import BenchError
from tasks.answer_records import RecordedItems, RecordedVQATask
from tasks.okvqa_nltk import PACKAGES, load, missing_packages
from tasks.vqa import VQAItem

NLTK_PACKAGES = tuple(PACKAGES)
NLTK_DOWNLOAD = f"python -m nltk.downloader {' '.join(NLTK_PACKAGES)}"
INSTALL = "pip install nltk inflection"

# The reference's _MANUAL_MATCHES (word > its stem): stems OK-VQA's own procedure gives that the
# rules above would miss or get wrong ("leaves" > "leaf", "christmas" kept whole).
MANUAL_MATCHES: dict[str, str] = dict(pair.split(">") for pair in """
police>police las>las vegas>vegas yes>yes jeans>jean hell's>hell domino's>domino morning>morn clothes>cloth
are>are riding>ride leaves>leaf dangerous>danger clothing>cloth texting>text kiting>kite
firefighters>firefight ties>tie married>married teething>teeth gloves>glove tennis>tennis dining>dine
directions>direct waves>wave christmas>christmas drives>drive pudding>pud coding>code plating>plate
quantas>quanta hornes>horn graves>grave mating>mate paned>pane alertness>alert sunbathing>sunbath tenning>ten
wetness>wet urinating>urine sickness>sick braves>brave firefighting>firefight lenses>lens reflections>reflect
backpackers>backpack eatting>eat designers>design curiousity>curious playfulness>play blindness>blind
hawke>hawk tomatoe>tomato rodeoing>rodeo brightness>bright circuses>circus skateboarders>skateboard
staring>stare electronics>electron electicity>elect mountainous>mountain socializing>social hamburgers>hamburg
caves>cave transitions>transit wading>wade creame>cream toileting>toilet sautee>saute buildings>build
belongings>belong stockings>stock walle>wall cumulis>cumuli travelers>travel conducter>conduct browsing>brows
pooping>poop haircutting>haircut toppings>top hearding>heard sunblocker>sunblock bases>base markings>mark
mopeds>mope kindergartener>kindergarten pies>pie scrapbooking>scrapbook couponing>coupon meetings>meet
elevators>elev lowes>low men's>men childrens>children shelves>shelve paintings>paint raines>rain paring>pare
expressions>express routes>rout pease>peas vastness>vast awning>awn boy's>boy drunkenness>drunken teasing>teas
conferences>confer ripeness>ripe suspenders>suspend earnings>earn reporters>report kid's>kid
containers>contain corgie>corgi porche>porch microwaves>microwave batter's>batter sadness>sad apartments>apart
oxygenize>oxygen striping>stripe purring>pure professionals>profession piping>pipe farmer's>farmer
potatoe>potato emirates>emir womens>women veteran's>veteran wilderness>wilder propellers>propel alpes>alp
charioteering>chariot swining>swine illness>ill crepte>crept adhesives>adhesive regent's>regent
decorations>decor rabbies>rabbi overseas>oversea travellers>travel casings>case smugness>smug doves>dove
nationals>nation mustange>mustang ringe>ring gondoliere>gondolier vacationing>vacate reminders>remind
baldness>bald settings>set glaced>glace coniferous>conifer revelations>revel personals>person
daughter's>daughter badness>bad projections>project polarizing>polar vandalizers>vandal minerals>miner
protesters>protest controllers>control weddings>wed sometimes>sometime earing>ear""".split())


@dataclass(frozen=True)
class StemmingData:
    """The nltk data the stemmer uses, and the name a run records for it (settings "stemming_data")."""

    name: str
    folder: Path | None = None  # an nltk data folder, used alone; None: nltk's own search path


NLTK_SEARCH_PATH = StemmingData("nltk")  # the paper suite's: the user's download, where nltk finds it


def require_nltk_data(folder: Path | None = None) -> None:
    """nltk, inflection and nltk's three data packages are there (on nltk's search path, or in
    `folder`), or one line says how to get them."""
    try:
        import inflection  # noqa: F401
        import nltk  # noqa: F401
    except ImportError:
        raise BenchError(f"OK-VQA's answer stemming needs nltk and inflection: {INSTALL}") from None
    missing = missing_packages(folder)
    if missing and folder is None:
        raise BenchError(f"OK-VQA's answer stemming needs nltk's {', '.join(missing)} data, which is not installed; "
                         f"run: {NLTK_DOWNLOAD}")
    if missing:
        raise BenchError(f"{folder} lacks nltk's {', '.join(missing)} data for OK-VQA's answer stemming (the tiny "
                         "world writes its own: a world written before it has none); write the world again: "
                         "bench data tiny --out DIR")


@functools.cache
def _stemmer(folder: Path | None = None) -> Callable[[str], str]:
    """nltk's tokenizer, tagger and lemmatiser (from `folder` alone, or nltk's search path) and
    inflection's singulariser, loaded once per folder."""
    require_nltk_data(folder)
    import inflection

    nltk = load(folder)

    def stem(text: str) -> str:
        words = []
        for word, tag in nltk.tag(nltk.tokenize(text)):
            if word in MANUAL_MATCHES:
                word = MANUAL_MATCHES[word]
            elif word.endswith("ing"):
                word = nltk.verb_lemma(word)
            elif tag.startswith(("NNS", "NNPS")):  # plural nouns
                word = inflection.singularize(word)
            words.append(word)
        return " ".join(words)

    return stem


def stem_answer(text: str, folder: Path | None = None) -> str:
    """OKVQAStemmer.stem: the OK-VQA stem of an answer (tokens joined by single spaces), with
    the nltk data of `folder` alone, or (None) of nltk's search path."""
    try:
        return _stemmer(folder)(text)
    except LookupError:  # data removed while running: nltk's own message spans many lines
        raise BenchError(f"OK-VQA's answer stemming lost nltk's data; run: {NLTK_DOWNLOAD}") from None


def postprocess_okvqa(text: str, folder: Path | None = None) -> str:
    """postprocess_ok_vqa_generation: cut at 'Question', 'Answer' or 'Short', then stem."""
    return stem_answer(re.split("Question|Answer|Short", text, maxsplit=1)[0], folder)


class OKVQATask(RecordedVQATask):
    """OK-VQA: answers stemmed before the metric, in every suite (its answers are stems)."""

    reference_postprocess = True

    def __init__(self, name: str, recorded: RecordedItems, image_path: Callable[[VQAItem], Path],
                 stemming: StemmingData = NLTK_SEARCH_PATH, **options: Any) -> None:
        super().__init__(name, recorded, image_path, "okvqa", **options)
        self.stemming_folder = stemming.folder
        self.settings = {**self.settings, "postprocess": "robustvlm", "stemming_data": stemming.name}

    def check_data(self, ids: list[str]) -> None:
        super().check_data(ids)
        require_nltk_data(self.stemming_folder)

    def postprocess(self, text: str) -> str:
        return postprocess_okvqa(text, self.stemming_folder)
