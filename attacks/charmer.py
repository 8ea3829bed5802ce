"""Charmer: the character-level text attack of LEAF's evaluations (greedy, within Levenshtein k).

Reference: LEAF (LIONS-EPFL/LEAF, NeurIPS 2025), utils_attacks.py,
`attack_text_charmer_classification` (zero-shot text classification) and, for the constrained
variant, `attack_text_charmer_inference`; the attack is Charmer (Abad Rocamora et al., ICML 2024).

A sentence of L characters has 2L+1 edit positions: the L+1 gaps around its characters (an
insertion there) and its L characters (a substitution, or a deletion). Each of at most k rounds
makes one edit, so the result stays within Levenshtein distance k of the original:

1. position step: put a space at every position (insert one in a gap; replace a character by
   one, or delete it where it already is a space), score the 2L+1 sentences with `loss`, and keep
   the `rho` best positions (LEAF's parameter `n`, `--rho` in its scripts);
2. character step: at each kept position apply every symbol of V = [no-op/delete] + alphabet:
   the first symbol (LEAF's -1) deletes the character there, or leaves a gap unchanged; a symbol
   equal to the character it replaces deletes it too (LEAF's `alternative=-1`). Score the rho*|V|
   sentences and move to the best one, even if it scores below the current sentence.
3. stop once that sentence is broken (`is_broken`), as LEAF's classification attack does, else
   go on with the next round.

Candidates are not deduplicated, as in LEAF, so `queries` counts what LEAF scores.

constrained: LEAF's `constrain` (the "rho50-k1-constrained" models were trained under it): a
candidate is valid only if it holds strictly fewer distinct English words (nltk's `words`
corpus, after nltk.word_tokenize of the lower-cased sentence) than the current sentence, so no
edit may keep or make a dictionary word in place of the one it breaks. An invalid candidate is
scored as the current sentence (LEAF replaces it by that), in both steps. LEAF's classification
function has no such option (eval_zero_shot_text.py parses --constrain but only names its file
with it); the rule is the one attack_text_charmer_inference and _constrained_ret apply, and like
every mode here it stops once broken (those two, having no is_broken, run all k rounds).

As in LEAF, the original sentence is attacked even when it is already broken: a task that counts
such a sample as non-robust can skip the call.

leaf_quirks (default off; on, ours matches the file query for query): two incidental behaviours
of utils_attacks.py that the algorithm does not call for. (a) Its batching slices up to
len - 1, so the last sentence of each step is never scored (the end-of-sentence gap, and the
last symbol at the last kept position), and the position step keeps min(rho, size of its last
batch) positions. (b) Its "_" gap placeholder makes inserting "_" a no-op.
"""
from __future__ import annotations

import functools
import string
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from attacks.core import NonFiniteLossError

# LEAF's V without its -1: lower-case, space, upper-case, digits, punctuation (in this order).
DEFAULT_ALPHABET: str = string.ascii_lowercase + " " + string.ascii_uppercase + string.digits + string.punctuation
DELETE: None = None  # LEAF's -1 in V: delete the character at a position / leave a gap as it is
GAP_PLACEHOLDER = "_"  # what LEAF's generate_sentence writes into the gaps (leaf_quirks (b))

# What `--attack-args` may set (attacks.table); the rest are the task's.
OPTIONS: dict[str, type] = {"rho": int, "constrained": bool, "alphabet": str, "batch_size": int,
                            "leaf_quirks": bool}

Scorer = Callable[[list[str]], Tensor]


@dataclass(frozen=True)
class CharmerOutcome:
    text: str  # the adversarial sentence (the original if nothing broke it / k = 0)
    broken: bool  # is_broken(text) at the end
    distance: int  # levenshtein(original, text) <= k
    queries: int  # how many candidate sentences were scored


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character, each costing 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def check_options(*, rho: int = 10, alphabet: str = DEFAULT_ALPHABET, batch_size: int = 256, **_: object) -> None:
    """ValueError naming the first option charmer cannot run with (for a task's check_attack)."""
    if isinstance(rho, bool) or not isinstance(rho, int) or rho < 1:
        raise ValueError(f"charmer: rho (positions kept per round) must be an integer >= 1, got {rho!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"charmer: batch_size must be an integer >= 1, got {batch_size!r}")
    if not isinstance(alphabet, str) or not alphabet:
        raise ValueError("charmer: alphabet must be a non-empty string of the characters it may write")


def edit(sentence: str, position: int, symbol: str | None, *, leaf_quirks: bool = False) -> str:
    """The sentence with `symbol` at one of its 2L+1 positions (even: the gap before character
    position//2, the last one after the end; odd: character position//2), as LEAF's
    generate_sentence does it with alternative=-1."""
    i = position // 2
    if position % 2 == 0:
        if symbol is DELETE or (leaf_quirks and symbol == GAP_PLACEHOLDER):
            return sentence
        return sentence[:i] + symbol + sentence[i:]
    if symbol is DELETE or sentence[i] == symbol:
        return sentence[:i] + sentence[i + 1:]
    return sentence[:i] + symbol + sentence[i + 1:]


class WordCounter:
    """LEAF's valid_sentence: how many distinct dictionary words a sentence holds."""

    def __init__(self, english_words: Collection[str] | None, tokenize: Callable[[str], list[str]] | None):
        self.words = frozenset(english_words) if english_words is not None else _nltk_words()
        self.tokenize = tokenize if tokenize is not None else _nltk_tokenizer()

    def __call__(self, sentence: str) -> int:
        return len(self.words.intersection(self.tokenize(sentence.lower())))

    def keep_valid(self, current: str, candidates: list[str]) -> list[str]:
        """Each candidate that breaks a word, else the current sentence (LEAF scores that instead)."""
        before = self(current)
        return [c if self(c) < before else current for c in candidates]


class MissingLanguageData(LookupError):
    """nltk's data for the constrained mode is not installed (the message says how to get it)."""


@functools.cache
def _nltk_words() -> frozenset[str]:
    try:
        import nltk
        from nltk.corpus.reader import WordListCorpusReader

        # nltk.corpus.words as LEAF reads it (every file but the README), opened afresh: the
        # shared lazy loader stays bound to the first folder it found.
        reader = WordListCorpusReader(nltk.data.find("corpora/words"), r"(?!README|\.).*", encoding="ascii")
        return frozenset(reader.words())
    except (ImportError, LookupError):
        raise MissingLanguageData("charmer's constrained mode needs nltk's English word list: pip install nltk && python -m "
                         "nltk.downloader words punkt_tab (or pass english_words=...)") from None


def _nltk_tokenizer() -> Callable[[str], list[str]]:
    try:
        from nltk.tokenize import word_tokenize
        word_tokenize("a b")  # loads punkt_tab now, so a missing one is named before any work
    except (ImportError, LookupError):
        raise MissingLanguageData("charmer's constrained mode needs nltk's punkt_tab tokenizer: pip install nltk && python -m "
                         "nltk.downloader words punkt_tab (or pass tokenize=...)") from None
    return word_tokenize


class _Scorer:
    """Scores candidate lists in batches and counts every sentence it scores."""

    def __init__(self, loss: Scorer, batch_size: int, leaf_quirks: bool):
        self.loss, self.batch_size, self.leaf_quirks = loss, batch_size, leaf_quirks
        self.queries = 0

    def __call__(self, candidates: list[str]) -> tuple[list[str], Tensor, int]:
        """(the candidates scored, their scores, the size of the last batch)."""
        if self.leaf_quirks:
            candidates = candidates[:-1]  # leaf_quirks (a): LEAF's slices end at len - 1
        scores: list[Tensor] = []
        for start in range(0, len(candidates), self.batch_size):
            batch = candidates[start:start + self.batch_size]
            out = torch.as_tensor(self.loss(batch)).detach().reshape(-1)
            if len(out) != len(batch):
                raise ValueError(f"charmer: loss returned {len(out)} scores for {len(batch)} sentences")
            if not bool(torch.isfinite(out).all()):  # a NaN would win (or lose) every comparison silently
                raise NonFiniteLossError(f"charmer: the loss is not finite on {batch[0]!r} (or its batch)")
            scores.append(out)
            self.queries += len(batch)
        last = len(scores[-1]) if scores else 0
        return candidates, torch.cat(scores) if scores else torch.empty(0), last


def charmer(sentence: str, loss: Scorer, is_broken: Callable[[list[str]], Tensor], k: int, *, rho: int = 10,
            alphabet: str = DEFAULT_ALPHABET, constrained: bool = False, batch_size: int = 256,
            leaf_quirks: bool = False, english_words: Collection[str] | None = None,
            tokenize: Callable[[str], list[str]] | None = None) -> CharmerOutcome:
    """At most k greedy character edits that raise `loss` (higher = more adversarial), stopping
    once `is_broken`; see the module docstring.

    loss: one score per sentence; is_broken: one bool per sentence.
    english_words, tokenize: the constrained mode's dictionary and word splitter (default: nltk's
    `words` corpus and word_tokenize, as LEAF).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"charmer: k (the Levenshtein budget) must be an integer >= 0, got {k!r}")
    check_options(rho=rho, alphabet=alphabet, batch_size=batch_size)
    counter = WordCounter(english_words, tokenize) if constrained else None
    symbols: Sequence[str | None] = [DELETE, *alphabet]
    score = _Scorer(loss, batch_size, leaf_quirks)
    current, broken = sentence, None
    for _ in range(k):
        spaced = [edit(current, z, " ") for z in range(2 * len(current) + 1)]
        if counter is not None:
            spaced = counter.keep_valid(current, spaced)
        _, scores, last_batch = score(spaced)
        if len(scores) == 0:
            break  # leaf_quirks on an empty sentence: LEAF scores nothing (and fails)
        keep = min(rho, last_batch if leaf_quirks else len(scores))
        positions = torch.topk(scores, keep).indices.tolist()
        candidates = [edit(current, z, s, leaf_quirks=leaf_quirks) for z in positions for s in symbols]
        if counter is not None:
            candidates = counter.keep_valid(current, candidates)
        candidates, scores, _ = score(candidates)
        if len(scores) == 0:
            break
        current = candidates[int(torch.argmax(scores))]
        broken = bool(torch.as_tensor(is_broken([current])).reshape(-1)[0])
        if broken:
            break
    if broken is None:
        broken = bool(torch.as_tensor(is_broken([current])).reshape(-1)[0])
    distance = levenshtein(sentence, current)
    if distance > k:  # one edit a round: a violation is a bug here, never an adversarial example
        raise RuntimeError(f"charmer left its budget: distance {distance} > k={k}")
    return CharmerOutcome(current, broken, distance, score.queries)
