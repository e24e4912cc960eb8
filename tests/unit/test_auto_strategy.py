"""How `auto` chooses, and how it copes with a collection API that fails. No I/O."""

from __future__ import annotations

import pytest

from worker.errors import PermanentError, RetryableError
from worker.faces import Box, Reference
from worker.recognition.compare import StrategyResult
from worker.recognition.strategies import COLLECTION_COOL_OFF_SECONDS, AutoStrategy

FACE = Box(0.1, 0.1, 0.2, 0.2)


class Refs:
    def __init__(self, count: int) -> None:
        self.refs = tuple(Reference(f"p{i}", f"references/p{i}.jpg", "e") for i in range(count))

    def get(self) -> tuple[Reference, ...]:
        return self.refs


class Compare:
    calls = 0

    def match(self, upload, faces, threshold):
        self.calls += 1
        return StrategyResult(faces, [], references=0, strategy="compare")


class Collection:
    def __init__(self, fail_prepare: Exception | None = None, fail_finish: Exception | None = None):
        self.fail_prepare, self.fail_finish = fail_prepare, fail_finish
        self.prepared = 0

    def prepare(self, upload, threshold):
        self.prepared += 1
        if self.fail_prepare:
            raise self.fail_prepare
        return "speculation"

    def finish(self, speculation, upload, faces, threshold):
        if self.fail_finish:
            raise self.fail_finish
        return StrategyResult(faces, [], references=0, strategy="collection")


def auto(refs: int, collection: Collection, faces: int = 1) -> tuple[AutoStrategy, Compare]:
    compare = Compare()
    strategy = AutoStrategy(compare, collection, Refs(refs), detect=lambda image: [FACE] * faces)  # type: ignore[arg-type]
    return strategy, compare


def test_chooses_by_references_and_faces() -> None:
    assert auto(12, Collection())[0].analyse({}, 80).strategy == "collection"
    assert auto(12, Collection(), faces=12)[0].analyse({}, 80).strategy == "compare"
    few, _ = auto(9, Collection())
    assert few.analyse({}, 80).strategy == "compare"


def test_a_collection_api_that_does_not_exist_is_given_up_for_good() -> None:
    collection = Collection(
        fail_prepare=PermanentError("UnknownOperation", code="UnknownOperation")
    )
    strategy, compare = auto(12, collection)
    for _ in range(3):
        assert strategy.analyse({}, 80).strategy == "compare"
    assert collection.prepared == 1
    assert compare.calls == 3


def test_a_failing_collection_is_tried_again_after_the_cool_off() -> None:
    collection = Collection(fail_prepare=RetryableError("InternalServerError"))
    strategy, _ = auto(12, collection)
    now = [1000.0]
    strategy._clock = lambda: now[0]
    assert strategy.analyse({}, 80).strategy == "compare"
    assert strategy.analyse({}, 80).strategy == "compare"
    assert collection.prepared == 1
    now[0] += COLLECTION_COOL_OFF_SECONDS
    collection.fail_prepare = None
    assert strategy.analyse({}, 80).strategy == "collection"


def test_a_throttled_search_is_not_a_reason_to_switch() -> None:
    strategy, compare = auto(12, Collection(fail_finish=RetryableError("ThrottlingException")))
    with pytest.raises(RetryableError):
        strategy.analyse({}, 80)
    assert compare.calls == 0
