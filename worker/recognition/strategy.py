"""The one protocol every matching strategy follows, and what a strategy hands back. No I/O.

A strategy matches an upload in two steps around the upload's DetectFaces, so that work which
does not need the faces (a collection search of the whole upload) runs beside it:

* :meth:`MatchStrategy.begin` — before the faces are known; returns a :class:`Begun`;
* :meth:`MatchStrategy.match` — with the faces DetectFaces found.

:func:`analyse` runs the two with the DetectFaces between them. A strategy never changes shared
state on its own judgement: references that failed are *reported* (:class:`ReferenceFailure`,
``unusable``) and the pipeline decides what they mean.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

from worker.errors import PermanentError
from worker.faces import Box, Candidate, Reference
from worker.recognition.client import Image

Search = tuple[Box | None, list[tuple[str, float]]]
"""A collection search: the largest face searched, and (external id, similarity) of each hit."""


@dataclass(frozen=True)
class ReferenceFailure:
    """A reference whose comparison failed for a reason that does not pass with retries.

    Not yet a verdict: a two-image call does not say which image it means, so the pipeline
    checks the upload and the reference before anything is blamed.
    """

    reference: Reference
    error: PermanentError


@dataclass(frozen=True)
class StrategyResult:
    """What a strategy found: the upload's faces and the raw candidates for them.

    ``failures``: comparisons that failed (to be judged); ``unusable``: references proven
    unusable on their own (a one-image call such as IndexFaces found no face or could not read
    the photo), with the reason.
    """

    faces: list[Box]
    candidates: list[Candidate]
    references: int
    strategy: str
    failures: tuple[ReferenceFailure, ...] = ()
    unusable: tuple[tuple[Reference, str], ...] = ()


@dataclass(frozen=True)
class Begun:
    """What a strategy started before the upload's faces were known."""

    strategy: str
    refs: tuple[Reference, ...]
    search: Future[Search] | None = None
    unusable: tuple[tuple[Reference, str], ...] = field(default=())


class MatchStrategy(Protocol):
    name: str

    def detect(self, upload: Image) -> list[Box]:
        """The upload's faces (one DetectFaces)."""
        ...

    def begin(self, upload: Image, threshold: float) -> Begun:
        """Start what does not need the upload's faces."""
        ...

    def match(
        self, begun: Begun, upload: Image, faces: list[Box], threshold: float
    ) -> StrategyResult:
        """Find what the upload's ``faces`` match."""
        ...


def analyse(strategy: MatchStrategy, upload: Image, threshold: float) -> StrategyResult:
    """Match one upload: begin, DetectFaces beside it, then match the faces found."""
    begun = strategy.begin(upload, threshold)
    return strategy.match(begun, upload, strategy.detect(upload), threshold)
