"""CIDEr-D of a resampled evaluation set, for bootstrap intervals.

CIDEr's idf comes from the evaluated set's references (pycocoevalcap, cider/cider_scorer.py,
`compute_doc_freq`: an n-gram's document frequency is the number of samples whose references
contain it, and `ref_len` is the log of the number of samples). Resampling the samples with
repeats therefore changes every weight, so a bootstrap that resamples fixed per-sample scores is
only an approximation. This module recomputes the scores exactly as `CiderScorer` would for a
resampled set (a sample drawn twice is two documents), for many resamples at once.

Every term of `CiderScorer.compute_cider` is linear in the squared idf weights w_g^2 (w_g =
ref_len - log(max(1, df_g)) >= 0): the clipped numerator sum_g min(h_g w_g, r_g w_g) r_g w_g =
sum_g min(h_g, r_g) r_g w_g^2 and both squared norms. So each sample's n-gram statistics are
sparse rows, one matrix product per batch of resamples gives all of them, and the length
penalty (its "length" counts bigrams, a quirk kept) does not depend on the weights.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

ORDERS = 4  # n-grams up to 4, CiderScorer's n
SIGMA = 6.0  # CiderScorer's length-penalty width
ELEMENTS_PER_BATCH = 4_000_000  # resamples x n-grams per dense weight block (~32 MB)


def _ngrams(tokens: str) -> dict[tuple[str, ...], int]:
    from pycocoevalcap.cider.cider_scorer import precook  # the reference's own n-gram counting

    return dict(precook(tokens, ORDERS))


class CiderResampler:
    """The references of a fixed sample set (PTB-tokenised, as CiderScorer receives them)."""

    def __init__(self, references: Sequence[Sequence[str]]) -> None:
        self.references = [[_ngrams(ref) for ref in refs] for refs in references]
        self.index: dict[tuple[str, ...], int] = {}
        rows, cols = [], []
        for i, refs in enumerate(self.references):
            for gram in {g for ref in refs for g in ref}:
                rows.append(i)
                cols.append(self.index.setdefault(gram, len(self.index)))
        # documents[i, g] = 1 when sample i's references contain n-gram g
        self.documents = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)),
                                           shape=(len(self.references), len(self.index)))

    def scores(self, candidates: Sequence[str], counts: np.ndarray) -> np.ndarray:
        """Per-sample CIDEr-D x100 of `candidates` (one tokenised string per sample) in each
        resampled set; counts[b, i] = how often sample i is drawn in resample b. Returns an
        array shaped like counts (a sample's score in a set it is not drawn in is still defined)."""
        counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
        n = len(self.references)
        if len(candidates) != n or counts.shape[1] != n:
            raise ValueError(f"need one candidate and one count per sample ({n}); got {len(candidates)} "
                             f"and {counts.shape[1]}")
        stats = self._statistics([_ngrams(c) for c in candidates])
        out = np.empty_like(counts)
        step = max(1, ELEMENTS_PER_BATCH // max(1, stats.vocabulary))
        for start in range(0, len(counts), step):
            block = counts[start:start + step]
            out[start:start + step] = stats.scores(self._squared_weights(block, stats.vocabulary)).T
        return out

    def _squared_weights(self, counts: np.ndarray, vocabulary: int) -> np.ndarray:
        """(vocabulary, resamples) w_g^2; n-grams only candidates use (df 0) get ref_len^2."""
        ref_len = np.log(counts.sum(axis=1))  # log of the number of documents
        df = (self.documents.T @ counts.T).T  # (resamples, reference n-grams)
        weights = ref_len[:, None] - np.log(np.maximum(1.0, df))
        extra = np.repeat(ref_len[:, None], vocabulary - df.shape[1], axis=1)
        return np.concatenate([weights, extra], axis=1).T ** 2

    def _statistics(self, hypotheses: list[dict[tuple[str, ...], int]]) -> _Statistics:
        index = dict(self.index)
        hyp_rows: list[int] = []
        hyp_cols: list[int] = []
        hyp_vals: list[float] = []
        pair_rows: list[int] = []
        pair_cols: list[int] = []
        ref_vals: list[float] = []
        clipped_vals: list[float] = []
        hyp_of_pair: list[int] = []  # the hypothesis row (sample, order) of each pair row
        summing: list[tuple[int, int, float]] = []  # (sample, pair row, weight) of the final mean
        for i, (hyp, refs) in enumerate(zip(hypotheses, self.references)):
            for gram, tf in hyp.items():
                hyp_rows.append(i * ORDERS + len(gram) - 1)
                hyp_cols.append(index.setdefault(gram, len(index)))
                hyp_vals.append(float(tf) ** 2)
            hyp_length = _bigram_count(hyp)
            for ref in refs:
                penalty = np.exp(-(float(hyp_length - _bigram_count(ref)) ** 2) / (2 * SIGMA**2))
                base = len(hyp_of_pair)
                for order in range(ORDERS):
                    hyp_of_pair.append(i * ORDERS + order)
                    summing.append((i, base + order, 10.0 * 100.0 * penalty / (ORDERS * len(refs))))
                for gram, tf in ref.items():
                    row = base + len(gram) - 1
                    pair_rows.append(row)
                    pair_cols.append(index[gram])
                    ref_vals.append(float(tf) ** 2)
                    clipped_vals.append(float(min(hyp.get(gram, 0), tf) * tf))
        v, pairs = len(index), len(hyp_of_pair)
        samples, rows, weights = zip(*summing) if summing else ((), (), ())
        return _Statistics(
            vocabulary=v,
            hypothesis=sparse.csr_matrix((hyp_vals, (hyp_rows, hyp_cols)), shape=(len(hypotheses) * ORDERS, v)),
            reference=sparse.csr_matrix((ref_vals, (pair_rows, pair_cols)), shape=(pairs, v)),
            clipped=sparse.csr_matrix((clipped_vals, (pair_rows, pair_cols)), shape=(pairs, v)),
            hyp_of_pair=np.asarray(hyp_of_pair, dtype=np.int64),
            mean=sparse.csr_matrix((weights, (samples, rows)), shape=(len(hypotheses), pairs)),
        )


def _bigram_count(grams: dict[tuple[str, ...], int]) -> int:
    """CiderScorer's `length`: it adds term frequencies where n == 1, i.e. of the bigrams."""
    return sum(tf for gram, tf in grams.items() if len(gram) == 2)


class _Statistics:
    """A candidate set's n-gram statistics as sparse rows over the vocabulary."""

    def __init__(self, vocabulary: int, hypothesis: sparse.csr_matrix, reference: sparse.csr_matrix,
                 clipped: sparse.csr_matrix, hyp_of_pair: np.ndarray, mean: sparse.csr_matrix) -> None:
        self.vocabulary = vocabulary
        self.hypothesis, self.reference, self.clipped = hypothesis, reference, clipped
        self.hyp_of_pair, self.mean = hyp_of_pair, mean

    def scores(self, squared_weights: np.ndarray) -> np.ndarray:
        """(samples, resamples) scores for (vocabulary, resamples) squared weights."""
        hyp_norm = np.sqrt(self.hypothesis @ squared_weights)[self.hyp_of_pair]
        ref_norm = np.sqrt(self.reference @ squared_weights)
        numerator = self.clipped @ squared_weights
        denominator = hyp_norm * ref_norm
        # CiderScorer divides only when both norms are non-zero; the numerator is 0 otherwise
        cosine = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator != 0)
        return np.asarray(self.mean @ cosine)
