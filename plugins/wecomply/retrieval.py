"""Rank candidate chunks for a question: BM25 with an idf-weighted coverage cut-off.

Pure functions. Candidates come from the repository (so only chunks the asker
may read ever reach this module); document frequencies are counted through
the repository too, i.e. over what the asker can read. ``coverage`` — the
share of the question's idf weight that a chunk contains — decides whether a
chunk is relevant at all: a chunk that only shares a common word such as
"policy" with the question does not ground an answer.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

K1 = 1.2
B = 0.75
MIN_COVERAGE = 0.25

K = TypeVar("K")


@dataclass(frozen=True)
class Scored(Generic[K]):
    key: K
    score: float
    coverage: float
    matched: tuple[str, ...]


def idf(df: int, n_docs: int) -> float:
    """BM25's idf, in the always-positive form (Lucene's ``log(1 + ...)``)."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def rank(
    query_terms: Sequence[str],
    candidates: Sequence[tuple[K, Sequence[str]]],
    *,
    df: Mapping[str, int],
    n_docs: int,
    min_coverage: float = MIN_COVERAGE,
    top_k: int = 5,
) -> list[Scored[K]]:
    """The ``top_k`` relevant candidates, best first.

    ``candidates`` are (key, tokens of the chunk); ``df`` maps each query term to
    the number of readable chunks holding it, ``n_docs`` is how many there are.
    """
    terms = list(dict.fromkeys(query_terms))
    if not terms or not candidates:
        return []
    n = max(n_docs, len(candidates))
    weights = {t: idf(min(df.get(t, 0), n), n) for t in terms}
    total_weight = sum(weights.values()) or 1.0
    avgdl = sum(len(toks) for _, toks in candidates) / len(candidates) or 1.0
    scored: list[Scored[K]] = []
    for key, toks in candidates:
        counts = Counter(toks)
        dl = len(toks) or 1
        score = 0.0
        matched: list[str] = []
        for term in terms:
            tf = counts.get(term, 0)
            if not tf:
                continue
            matched.append(term)
            score += weights[term] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / avgdl))
        coverage = sum(weights[t] for t in matched) / total_weight
        if matched and coverage >= min_coverage:
            scored.append(Scored(key, score, coverage, tuple(matched)))
    scored.sort(key=lambda s: (-s.score, -s.coverage))
    return scored[:top_k]
