"""How `auto` chooses, and how it copes with a collection API that fails. No I/O."""

from __future__ import annotations

import pytest

from worker.errors import PermanentError, RetryableError
from worker.faces import Box, Reference
from worker.recognition.strategies import COLLECTION_COOL_OFF_SECONDS, AutoStrategy
from worker.recognition.strategy import Begun, StrategyResult, analyse

FACE = Box(0.1, 0.1, 0.2, 0.2)


class Refs:
    def __init__(self, count: int) -> None:
        self.refs = tuple(Reference(f"p{i}", f"references/p{i}.jpg", "e") for i in range(count))

    def get(self) -> tuple[Reference, ...]:
        return self.refs


class Compare:
    name = "compare"
    calls = 0

    def __init__(self, faces: int = 1) -> None:
        self.faces = faces

    def detect(self, upload):
        return [FACE] * self.faces

    def begin(self, upload, threshold):
        return Begun("compare", ())

    def match(self, begun, upload, faces, threshold):
        self.calls += 1
        return StrategyResult(faces, [], references=0, strategy="compare")


class Collection:
    name = "collection"

    def __init__(self, fail_prepare: Exception | None = None, fail_finish: Exception | None = None):
        self.fail_prepare, self.fail_finish = fail_prepare, fail_finish
        self.prepared = 0

    def begin(self, upload, threshold):
        self.prepared += 1
        if self.fail_prepare:
            raise self.fail_prepare
        return Begun("collection", Refs(12).refs)

    def match(self, begun, upload, faces, threshold):
        if self.fail_finish:
            raise self.fail_finish
        return StrategyResult(faces, [], references=0, strategy="collection")


def auto(refs: int, collection: Collection, faces: int = 1) -> tuple[AutoStrategy, Compare]:
    compare = Compare(faces)
    strategy = AutoStrategy(compare, collection, Refs(refs))  # type: ignore[arg-type]
    return strategy, compare


def test_chooses_by_references_and_faces() -> None:
    assert analyse(auto(12, Collection())[0], {}, 80).strategy == "collection"
    assert analyse(auto(12, Collection(), faces=12)[0], {}, 80).strategy == "compare"
    few, _ = auto(9, Collection())
    assert analyse(few, {}, 80).strategy == "compare"


def test_a_collection_api_that_does_not_exist_is_given_up_for_good() -> None:
    collection = Collection(
        fail_prepare=PermanentError("UnknownOperation", code="UnknownOperation")
    )
    strategy, compare = auto(12, collection)
    for _ in range(3):
        assert analyse(strategy, {}, 80).strategy == "compare"
    assert collection.prepared == 1
    assert compare.calls == 3


def test_a_failing_collection_is_tried_again_after_the_cool_off() -> None:
    collection = Collection(fail_prepare=RetryableError("InternalServerError"))
    strategy, _ = auto(12, collection)
    now = [1000.0]
    strategy._clock = lambda: now[0]
    assert analyse(strategy, {}, 80).strategy == "compare"
    assert analyse(strategy, {}, 80).strategy == "compare"
    assert collection.prepared == 1
    now[0] += COLLECTION_COOL_OFF_SECONDS
    collection.fail_prepare = None
    assert analyse(strategy, {}, 80).strategy == "collection"


def test_a_throttled_search_is_not_a_reason_to_switch() -> None:
    strategy, compare = auto(12, Collection(fail_finish=RetryableError("ThrottlingException")))
    with pytest.raises(RetryableError):
        analyse(strategy, {}, 80)
    assert compare.calls == 0
