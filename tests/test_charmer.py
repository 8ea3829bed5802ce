"""Charmer (attacks.charmer) against a transcription of LEAF's attack_text_charmer_classification.

The transcription below is LEAF's utils_attacks.py algorithm rewritten (LIONS-EPFL/LEAF:
generate_sentence with its "_" gap placeholder and mask, generate_all_sentences, the batching
that slices up to len - 1, topk of min(n, last batch), argmax, break on a misclassified best
candidate), run on the same text towers as ours: a bag-of-characters-and-bigrams linear tower and
the tiny open_clip text tower of the bench fixtures.
"""
from __future__ import annotations

import itertools
import random
import string

import nltk
import open_clip
import pytest
import torch
from torch import Tensor

from attacks.charmer import (
    DEFAULT_ALPHABET,
    OPTIONS,
    MissingLanguageData,
    WordCounter,
    _nltk_words,
    charmer,
    edit,
    levenshtein,
)
from attacks.core import NonFiniteLossError
from attacks.core_registry import keyword_options
from attacks.table import TABLE, check_arguments
from bench.run.attack_names import resolve_attack
from tests.bench_fixtures import ARCH, CLASSES, random_model
from tests.nltk_fixtures import make_nltk_data

LEAF_V = [-1] + [ord(c) for c in string.ascii_lowercase + " " + string.ascii_uppercase + string.digits
                 + string.punctuation]
WORDS = ("a", "photo", "of", "the", "red", "green", "blue", "yellow", "square", "circle", "triangle", "cross",
         "dog", "cat", "big", "small", "on", "in", "with", "bear", "grass", "show", "is", "near", "house", "tree",
         "car", "road", "sky", "water")


# ---- LEAF's attack, transcribed ------------------------------------------------------------

def leaf_generate_sentence(S: str, z: int, u: int, V: list[int]) -> str:
    """generate_sentence(S, z, u, V, k=1, alternative=-1)."""
    chars = list("".join("_" + s for s in S) + "_")
    mask = [0, 1] * len(S) + [0]
    if V[u] != -1:
        if chars[z] == chr(V[u]):
            chars[z], mask[z] = "_", 0
        else:
            chars[z], mask[z] = chr(V[u]), 1
    else:
        chars[z], mask[z] = "_", 0
    return "".join(c for c, m in zip(chars, mask) if m)


def leaf_margin(sims: Tensor, label: int) -> Tensor:
    """margin_loss_lm: the best other class's similarity minus the true one's."""
    others = torch.cat((sims[:, :label], sims[:, label + 1:]), dim=-1).max(dim=-1).values
    return others - sims[:, label]


def leaf_charmer_classification(tower, tokenizer, sentence: str, class_features: Tensor, label: int, n: int,
                                k: int, V: list[int], batch_size: int) -> tuple[str, int]:
    dist = 0
    with torch.no_grad():
        for dist in range(k):
            SS = [leaf_generate_sentence(sentence, z, 0, [ord(" ")]) for z in range(2 * len(sentence) + 1)]
            tokens = tokenizer(SS)
            loss = []
            for i in range(len(tokens) // batch_size + 1):
                beginning, end = i * batch_size, min((i + 1) * batch_size, len(tokens) - 1)
                if beginning == end:
                    continue
                sims = tower(tokens[beginning:end]) @ class_features.T
                loss.append(leaf_margin(sims, label))
            loss = torch.cat(loss)
            top_positions = torch.topk(loss, min(n, sims.shape[0])).indices
            SS = [leaf_generate_sentence(sentence, int(z), u, V) for z in top_positions for u in range(len(V))]
            tokens = tokenizer(SS)
            loss, preds = [], []
            for i in range(len(tokens) // batch_size + 1):
                beginning, end = i * batch_size, min((i + 1) * batch_size, len(tokens) - 1)
                if beginning == end:
                    continue
                sims = tower(tokens[beginning:end]) @ class_features.T
                loss.append(leaf_margin(sims, label))
                preds.append(sims.softmax(dim=-1).argmax(dim=-1))
            loss, preds = torch.cat(loss), torch.cat(preds)
            best = torch.argmax(loss).item()
            sentence = SS[best]
            if preds[best] != label:
                break
    return sentence, dist + 1


# ---- two text towers -------------------------------------------------------------------------

class BagTower:
    """A linear text tower on counts of characters and hashed character bigrams (normalised)."""

    def __init__(self, seed: int, dim: int = 16, buckets: int = 97):
        g = torch.Generator().manual_seed(seed)
        self.buckets = buckets
        self.weight = torch.randn(128 + buckets, dim, generator=g)
        self.rows = 0  # sentences encoded (what LEAF's attack scores)

    def tokenize(self, sentences: list[str]) -> Tensor:
        width = 128 + self.buckets
        flat: list[int] = []
        for row, s in enumerate(sentences):
            codes = list(s.encode("ascii", "replace"))
            flat += [row * width + c for c in codes]
            flat += [row * width + 128 + (a * 31 + b) % self.buckets for a, b in itertools.pairwise(codes)]
        counts = torch.bincount(torch.tensor(flat, dtype=torch.long), minlength=len(sentences) * width)
        return counts.view(len(sentences), width).float()

    def __call__(self, tokens: Tensor) -> Tensor:
        self.rows += len(tokens)
        f = tokens @ self.weight
        return f / f.norm(dim=-1, keepdim=True).clamp_min(1e-12)


class OpenClipTower:
    """The bench fixtures' tiny open_clip model's text tower (context length 16)."""

    def __init__(self):
        self.model = random_model(0)
        self.tokenize = open_clip.get_tokenizer(ARCH)
        self.rows = 0

    def __call__(self, tokens: Tensor) -> Tensor:
        self.rows += len(tokens)
        with torch.no_grad():
            return self.model.encode_text(tokens, normalize=True)


def classes_of(tower, seed: int) -> Tensor:
    if isinstance(tower, OpenClipTower):
        return tower(tower.tokenize([f"a photo of a {c}" for c in CLASSES]))
    g = torch.Generator().manual_seed(seed + 1)
    f = torch.randn(4, tower.weight.shape[1], generator=g)
    return f / f.norm(dim=-1, keepdim=True)


def scorers(tower, classes: Tensor, label: int):
    """Our interface's loss (LEAF's margin) and is_broken (misclassified) for one sentence."""
    def sims(sentences: list[str]) -> Tensor:
        return tower(tower.tokenize(sentences)) @ classes.T

    return (lambda s: leaf_margin(sims(s), label)), (lambda s: sims(s).argmax(dim=-1) != label)


def sentences(n: int, seed: int, words: tuple[str, ...] = WORDS, length: tuple[int, int] = (3, 6)):
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(*length))) for _ in range(n)]


# ---- tests -------------------------------------------------------------------------------------

def plain_levenshtein(a: str, b: str) -> int:
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1][-1]


def test_levenshtein_is_the_edit_distance():
    assert levenshtein("kitten", "sitting") == 3 and levenshtein("flaw", "lawn") == 2
    assert levenshtein("", "abc") == 3 and levenshtein("abc", "") == 3 and levenshtein("same", "same") == 0
    rng = random.Random(0)
    for _ in range(300):
        a, b = ("".join(rng.choice("abc ") for _ in range(rng.randint(0, 12))) for _ in range(2))
        assert levenshtein(a, b) == plain_levenshtein(a, b) == levenshtein(b, a)


def test_edits_are_leafs_generate_sentence():
    """Every position and symbol, including the no-op/delete symbol, a space, and '_' (a no-op in
    a gap for LEAF, whose placeholder it is: ours inserts it unless leaf_quirks)."""
    symbols = [None, *DEFAULT_ALPHABET]
    for s in ["a_b c", "hello world", "", "x", "  "]:
        for z in range(2 * len(s) + 1):
            for u, symbol in enumerate(symbols):
                leaf = leaf_generate_sentence(s, z, u, LEAF_V)
                assert edit(s, z, symbol, leaf_quirks=True) == leaf
                ours = edit(s, z, symbol)
                if z % 2 == 0 and symbol == "_":
                    assert ours == s[:z // 2] + "_" + s[z // 2:] and leaf == s
                else:
                    assert ours == leaf
                assert levenshtein(s, ours) <= 1


@pytest.mark.parametrize("k", [1, 2, 3])
def test_every_result_is_within_k_and_queries_are_counted(k):
    tower = BagTower(seed=k)
    classes = classes_of(tower, k)
    broke = 0
    for i, s in enumerate(sentences(25, seed=k, length=(6, 10))):
        label = int((tower(tower.tokenize([s])) @ classes.T).argmax())
        loss, is_broken = scorers(tower, classes, label)
        seen: list[str] = []

        def counting_loss(batch: list[str], seen: list[str] = seen, loss=loss) -> Tensor:
            seen.extend(batch)
            return loss(batch)

        out = charmer(s, counting_loss, is_broken, k, rho=1 + i % 7, batch_size=64)
        assert out.distance == levenshtein(s, out.text) <= k
        assert out.queries == len(seen) and out.broken == bool(is_broken([out.text])[0])
        assert (out.text == s) == (out.distance == 0)
        broke += out.broken
    assert 0 < broke and (k > 1 or broke < 25)  # the budget matters: one edit breaks some, not all


def test_k_zero_returns_the_original_unscored():
    tower = BagTower(seed=0)
    loss, is_broken = scorers(tower, classes_of(tower, 0), 0)
    out = charmer("a red square", loss, is_broken, 0)
    assert (out.text, out.distance, out.queries) == ("a red square", 0, 0)
    assert out.broken == bool(is_broken(["a red square"])[0])


def _compare_with_leaf(tower, texts: list[str], k: int, rho: int, batch_size: int):
    classes = classes_of(tower, 0)
    leaf_correct = ours_correct = 0
    for s in texts:
        label = int((tower(tower.tokenize([s])) @ classes.T).argmax())  # clean: correct
        loss, is_broken = scorers(tower, classes, label)
        tower.rows = 0
        leaf_text, rounds = leaf_charmer_classification(tower, tower.tokenize, s, classes, label, rho, k, LEAF_V,
                                                        batch_size)
        leaf_queries = tower.rows
        same = charmer(s, loss, is_broken, k, rho=rho, batch_size=batch_size, leaf_quirks=True)
        assert (same.text, same.queries) == (leaf_text, leaf_queries)  # the same algorithm, query for query
        assert same.distance <= rounds <= k
        ours = charmer(s, loss, is_broken, k, rho=rho, batch_size=batch_size)
        leaf_correct += not bool(is_broken([leaf_text])[0])
        ours_correct += not ours.broken
    return leaf_correct, ours_correct


def test_ours_matches_leaf_on_the_bag_tower():
    texts = sentences(30, seed=5, length=(12, 18))
    leaf_correct, ours_correct = _compare_with_leaf(BagTower(seed=5), texts, k=2, rho=4, batch_size=50)
    assert ours_correct <= leaf_correct and 0 < leaf_correct < 30  # some hold, some break


def test_the_last_position_leaf_skips_is_scored_by_default():
    """A tower that only an edit at the end of the sentence fools: LEAF's batching never scores
    the end gap, so only our default finds it."""
    def loss(batch: list[str]) -> Tensor:  # 1 for a character appended, 2 for a "!"
        return torch.tensor([(s[:-1] == "a cat") * (1.0 + (s[-1:] == "!")) for s in batch])

    def is_broken(batch: list[str]) -> Tensor:
        return loss(batch) == 2

    assert charmer("a cat", loss, is_broken, 1, rho=1).text == "a cat!"
    assert not charmer("a cat", loss, is_broken, 1, rho=1, leaf_quirks=True).broken


def test_ours_matches_leaf_on_a_tiny_open_clip_text_tower():
    """Real BPE tokens and a transformer, batched as LEAF batches (the random tower is fragile:
    one edit breaks every sentence, so this checks the search, not robustness)."""
    texts = sentences(10, seed=7, length=(2, 4))
    leaf_correct, ours_correct = _compare_with_leaf(OpenClipTower(), texts, k=2, rho=5, batch_size=128)
    assert ours_correct <= leaf_correct


# ---- the constraint ------------------------------------------------------------------------------

@pytest.fixture
def english(tmp_path, monkeypatch):
    """nltk data with punkt_tab (the project's builder) and a `words` corpus of WORDS."""
    root = make_nltk_data(tmp_path / "nltk_data")
    (root / "corpora" / "words").mkdir(parents=True)
    (root / "corpora" / "words" / "en").write_text("\n".join(WORDS) + "\n")
    monkeypatch.setattr(nltk.data, "path", [str(root)])
    _nltk_words.cache_clear()
    yield
    _nltk_words.cache_clear()


def test_constrained_edits_always_break_a_word(english):
    tower = BagTower(seed=3)
    classes = classes_of(tower, 3)
    count = WordCounter(None, None)  # nltk's words corpus and word_tokenize, as LEAF
    unconstrained_kept_words = changed = 0
    for s in sentences(20, seed=3):
        label = int((tower(tower.tokenize([s])) @ classes.T).argmax())
        loss, is_broken = scorers(tower, classes, label)
        out = charmer(s, loss, is_broken, 1, rho=5, constrained=True)
        assert out.text == s or count(out.text) < count(s)
        changed += out.text != s
        free = charmer(s, loss, is_broken, 1, rho=5)
        unconstrained_kept_words += free.text != s and count(free.text) >= count(s)
    assert changed > 0 and unconstrained_kept_words > 0  # it attacks, and the constraint binds


def test_constrained_leaves_a_sentence_without_words_alone(english):
    tower = BagTower(seed=4)
    loss, is_broken = scorers(tower, classes_of(tower, 4), 0)
    out = charmer("xq zzv 123", loss, is_broken, 3, rho=5, constrained=True)
    assert out.text == "xq zzv 123" and out.distance == 0


def test_constrained_without_nltk_data_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    _nltk_words.cache_clear()
    tower = BagTower(seed=0)
    loss, is_broken = scorers(tower, classes_of(tower, 0), 0)
    with pytest.raises(MissingLanguageData, match="nltk.downloader words punkt_tab"):
        charmer("a red square", loss, is_broken, 1, constrained=True)
    _nltk_words.cache_clear()


# ---- the name --------------------------------------------------------------------------------

def test_charmer_is_a_text_entry_with_checked_options():
    entry = resolve_attack("charmer")
    assert entry is TABLE["charmer"] and entry.domain == "text" and not entry.members
    assert all(e.domain == "pixel" for name, e in TABLE.items() if name != "charmer")
    signature = keyword_options(charmer)
    assert all(signature[name] is kind for name, kind in OPTIONS.items())  # the options are charmer's own
    assert check_arguments(entry, {"rho": 50, "constrained": True}) == {"rho": 50, "constrained": True}
    for bad in ({"rho": 0}, {"rho": 2.5}, {"steps": 10}, {"constrained": 1}):
        with pytest.raises(ValueError):
            check_arguments(entry, bad)
    with pytest.raises(ValueError, match="alphabet"):
        charmer("a", lambda s: torch.zeros(len(s)), lambda s: torch.zeros(len(s), dtype=torch.bool), 1, alphabet="")


def test_a_broken_loss_is_refused_not_searched():
    never = lambda s: torch.zeros(len(s), dtype=torch.bool)
    with pytest.raises(NonFiniteLossError):
        charmer("a cat", lambda s: torch.full((len(s),), float("nan")), never, 1)
    with pytest.raises(ValueError, match="3 scores for 11"):
        charmer("a cat", lambda s: torch.zeros(3), never, 1)
