"""The scores papers report: CIDEr (pycocoevalcap, x100) for captions and the official VQA
accuracy for VQAv2 and TextVQA. Both reproduce the reference code exactly, quirks included,
so our numbers compare with published ones."""
from __future__ import annotations

import re

from benchutil.errors import BenchError
from tasks import ptb

_NEIGHBOUR = "x"  # a neutral line after each prediction (see cider_scores)


class CiderReferences:
    """The references of an evaluated set, tokenised once; scores any of its predictions.

    Document frequencies come from the references only, so a sample's score does not depend
    on the other predictions: a batch of outputs is scored exactly as in the whole set
    (callers keep the worst case per sample across attacks on that).
    """

    def __init__(self, references: dict[str, list[str]], tokenizer: str = "auto") -> None:
        if not references:
            raise BenchError("CIDEr needs at least one sample; give predictions and references")
        for ident, refs in references.items():
            if not refs:
                raise BenchError(f"CIDEr: id {ident!r} has no reference captions; give at least one")
        try:
            from pycocoevalcap.cider.cider import Cider
        except ImportError:
            raise BenchError("CIDEr needs pycocoevalcap; pip install pycocoevalcap") from None
        self._cider, self.tokenizer = Cider, tokenizer
        # References go through the tokenizer as one file, as pycocoevalcap does.
        tokens = ptb.tokenize([ref for refs in references.values() for ref in refs], tokenizer)
        self.gts, start = {}, 0
        for ident, refs in references.items():
            self.gts[ident] = tokens[start:start + len(refs)]
            start += len(refs)

    def tokenize(self, predictions: dict[str, str]) -> dict[str, str]:
        """Each prediction PTB-tokenised as pycocoevalcap does, independently of the others."""
        ids = list(predictions)
        # Java's lexer can look past a line's end ("letter a." loses its period before a line
        # starting "The"), so each prediction gets the same neighbour line instead of the next
        # prediction: its tokens, and so its score, never depend on the other predictions.
        spaced = [line for ident in ids for line in (predictions[ident], _NEIGHBOUR)]
        return dict(zip(ids, ptb.tokenize(spaced, self.tokenizer)[::2]))

    def scores(self, predictions: dict[str, str]) -> dict[str, float]:
        """Per-sample CIDEr-D x100 of the given predictions (any subset of the ids)."""
        for ident in predictions:
            if ident not in self.gts:
                raise BenchError(f"CIDEr: no references for id {ident!r}; give references for every prediction id")
        tokens = self.tokenize(predictions)
        # Every reference takes part (the idf of the evaluated set); unscored ids get "".
        res = {ident: [tokens.get(ident, "")] for ident in self.gts}
        _, per_sample = self._cider().compute_score(self.gts, res)
        return {ident: float(score) * 100.0 for ident, score in zip(self.gts, per_sample) if ident in tokens}


def cider_scores(predictions: dict[str, str], references: dict[str, list[str]],
                 tokenizer: str = "auto") -> dict[str, float]:
    """Per-sample CIDEr-D x100 of one prediction per reference id; their mean is cider()."""
    for ident in references:
        if ident not in predictions:
            raise BenchError(f"CIDEr: no prediction for id {ident!r}; give one prediction per reference id")
    for ident in predictions:
        if ident not in references:
            raise BenchError(f"CIDEr: no references for id {ident!r}; give references for every prediction id")
    return CiderReferences(references, tokenizer).scores(predictions)


def cider(predictions: dict[str, str], references: dict[str, list[str]], tokenizer: str = "auto") -> float:
    """Corpus CIDEr-D x100 (as papers report): the mean of cider_scores()."""
    scores = cider_scores(predictions, references, tokenizer)
    return sum(scores.values()) / len(scores)


# ---------------------------------------------------------------- VQA accuracy
# Normalisation of the official evaluator (GT-Vision-Lab/VQA, PythonEvaluationTools/
# vqaEvaluation/vqaEval.py, Python 3 version). Its punctuation list has no "'" and no ":".
_PUNCT = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
# The official pattern starts with "(?!<=\d)", a typo for a lookbehind: as written it never
# fires, so every period not followed by a digit goes ("3.5" keeps its period, "5." does not).
_PERIOD = re.compile(r"\.(?!\d)")
# It passes re.UNICODE (= 32) as sub()'s positional count: at most 32 periods are removed.
_PERIOD_COUNT = int(re.UNICODE)
_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
            "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
# The official contraction table (key -> value). Keys with capitals ("Im", "Ive", "Id've",
# "I'dve") can never match lower-cased words; "somebody'd" maps to "somebodyd" (sic).
_CONTRACTIONS = dict(pair.split(">") for pair in """
aint>ain't arent>aren't cant>can't couldve>could've couldnt>couldn't couldn'tve>couldn't've
couldnt've>couldn't've didnt>didn't doesnt>doesn't dont>don't hadnt>hadn't hadnt've>hadn't've
hadn'tve>hadn't've hasnt>hasn't havent>haven't hed>he'd hed've>he'd've he'dve>he'd've hes>he's
howd>how'd howll>how'll hows>how's Id've>I'd've I'dve>I'd've Im>I'm Ive>I've isnt>isn't itd>it'd
itd've>it'd've it'dve>it'd've itll>it'll let's>let's maam>ma'am mightnt>mightn't
mightnt've>mightn't've mightn'tve>mightn't've mightve>might've mustnt>mustn't mustve>must've
neednt>needn't notve>not've oclock>o'clock oughtnt>oughtn't ow's'at>'ow's'at 'ows'at>'ow's'at
'ow'sat>'ow's'at shant>shan't shed've>she'd've she'dve>she'd've she's>she's shouldve>should've
shouldnt>shouldn't shouldnt've>shouldn't've shouldn'tve>shouldn't've somebody'd>somebodyd
somebodyd've>somebody'd've somebody'dve>somebody'd've somebodyll>somebody'll somebodys>somebody's
someoned>someone'd someoned've>someone'd've someone'dve>someone'd've someonell>someone'll
someones>someone's somethingd>something'd somethingd've>something'd've
something'dve>something'd've somethingll>something'll thats>that's thered>there'd
thered've>there'd've there'dve>there'd've therere>there're theres>there's theyd>they'd
theyd've>they'd've they'dve>they'd've theyll>they'll theyre>they're theyve>they've twas>'twas
wasnt>wasn't wed've>we'd've we'dve>we'd've weve>we've werent>weren't whatll>what'll
whatre>what're whats>what's whatve>what've whens>when's whered>where'd wheres>where's
whereve>where've whod>who'd whod've>who'd've who'dve>who'd've wholl>who'll whos>who's
whove>who've whyll>why'll whyre>why're whys>why's wont>won't wouldve>would've wouldnt>wouldn't
wouldnt've>wouldn't've wouldn'tve>wouldn't've yall>y'all yall'll>y'all'll y'allll>y'all'll
yall'd've>y'all'd've y'alld've>y'all'd've y'all'dve>y'all'd've youd>you'd youd've>you'd've
you'dve>you'd've youll>you'll youre>you're youve>you've""".split())


def _punctuation(text: str) -> str:
    # The official test looks at the original text, and one "1,000" anywhere makes every
    # punctuation mark vanish instead of turning into a space.
    digit_comma = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for p in _PUNCT:
        out = out.replace(p, "" if (p + " " in text or " " + p in text or digit_comma) else " ")
    return _PERIOD.sub("", out, count=_PERIOD_COUNT)


def _digits_articles(text: str) -> str:
    words = [_NUMBERS.get(w, w) for w in text.lower().split()]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES)


# Three evaluators score VQA (see docs/protocol.md). They share the normalisation above and
# the leave-one-out average; they differ in what is normalised, and when.
VQA_METRICS = ("official", "official-2017", "openflamingo")


def clean_answer(text: str) -> str:
    """The evaluators' first pass: newlines and tabs become spaces, the ends are stripped."""
    return text.replace("\n", " ").replace("\t", " ").strip()


def normalised_answer(text: str) -> str:
    """The evaluators' normalisation: punctuation, then number words to digits, articles dropped."""
    return _digits_articles(_punctuation(text))


def vqa_accuracy(prediction: str, answers: list[str], variant: str = "official") -> float:
    """VQA accuracy in [0, 1]: the mean over each answer left out of min(1, matches among
    the others / 3). Also used for TextVQA.

    variant "official": GT-Vision-Lab/VQA vqaEval.py since its 2021 fix (commit a013f00):
    answers and prediction are cleaned; both are normalised only when the answers disagree.
    "official-2017": the same file before that fix: the prediction is always normalised,
    the answers get the punctuation pass alone, only when they disagree, and are not cleaned.
    "openflamingo": open_flamingo/eval/vqa_metric.py, which RobustVLM's published numbers
    come from: both sides are always cleaned and normalised.
    """
    if not answers:
        raise BenchError("VQA accuracy needs the human answers; got none for a question")
    pred = clean_answer(prediction)
    if variant == "official":
        gts = [clean_answer(a) for a in answers]
        if len(set(gts)) > 1:
            gts, pred = [normalised_answer(a) for a in gts], normalised_answer(pred)
    elif variant == "official-2017":
        # (a unanimous "The Beatles" is then compared raw with the normalised "beatles")
        pred = normalised_answer(pred)
        gts = [_punctuation(a) for a in answers] if len(set(answers)) > 1 else list(answers)
    elif variant == "openflamingo":
        gts, pred = [normalised_answer(clean_answer(a)) for a in answers], normalised_answer(pred)
    else:
        raise BenchError(f"unknown VQA metric {variant!r}; use one of {', '.join(VQA_METRICS)}")
    accs = [min(1, float(sum(1 for j, a in enumerate(gts) if j != k and a == pred)) / 3)
            for k in range(len(gts))]
    return float(sum(accs)) / len(accs)
