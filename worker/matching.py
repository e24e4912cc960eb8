"""Matching rules (pure): from raw candidates to one match per label."""

from __future__ import annotations

from collections.abc import Iterable

from worker.faces import Candidate


def best_per_label(candidates: Iterable[Candidate], threshold: float) -> list[Candidate]:
    """Keep candidates at or above ``threshold``; one per label (its best); best first.

    Ties break on label then reference key so that the same inputs always give the same record.
    """
    best: dict[str, Candidate] = {}
    for candidate in candidates:
        if candidate.similarity < threshold:
            continue
        current = best.get(candidate.label)
        if current is None or _rank(candidate) < _rank(current):
            best[candidate.label] = candidate
    return sorted(best.values(), key=_rank)


def _rank(candidate: Candidate) -> tuple[float, str, str]:
    return (-candidate.similarity, candidate.label, candidate.reference_key)
