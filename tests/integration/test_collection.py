"""STRATEGY=collection/auto end to end, with call counts taken at the Rekognition endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.integration.harness import Stack, WorkerProcess
from tests.support.rekognition import FakeRekognition
from tests.support.squares import ALICE, BOB, CAROL, face_png
from worker.cli import main

pytestmark = pytest.mark.slow

StartWorker = Callable[..., WorkerProcess]
# Distinct "people" for the fake: saturated colours that stay apart after its quantisation.
PEOPLE = [
    (r, g, b)
    for r in (40, 120, 200)
    for g in (40, 120, 200)
    for b in (40, 120, 200)
    if max(r, g, b) - min(r, g, b) >= 80
]


def calls_for_one_upload(
    stack: Stack, fake: FakeRekognition, key: str, image: bytes
) -> tuple[dict[str, int], dict]:
    fake.calls.clear()
    stack.put(key, image)
    (published,) = stack.published(1)
    return dict(fake.calls), published.record


def test_collection_calls_do_not_grow_with_references(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition
) -> None:
    stack.put("references/alice.png", face_png(ALICE))
    stack.put("references/bob.png", face_png(BOB))
    stack.put("references/nobody.png", face_png())  # no face: tried once, then left out
    worker = start_worker(STRATEGY="collection")
    group = face_png(BOB, ALICE, CAROL, size=(400, 160))

    calls, record = calls_for_one_upload(stack, fake_rekognition, "uploads/warm-up.png", group)
    assert calls["IndexFaces"] == 3  # first use: the collection is filled once
    calls, record = calls_for_one_upload(stack, fake_rekognition, "uploads/group-1.png", group)
    assert calls == {"DetectFaces": 1, "SearchFacesByImage": 3}
    assert record["strategy"] == "collection"
    assert sorted(m["label"] for m in record["matches"]) == ["alice", "bob"]
    boxes = {m["label"]: m["face"]["left"] for m in record["matches"]}
    assert boxes["bob"] < boxes["alice"], "each match carries the box of its own face"

    # Ten times the references: still 1 + faces calls per upload.
    for index, colour in enumerate(PEOPLE[:18]):
        if colour not in (ALICE, BOB):
            stack.put(f"references/person-{index}.png", face_png(colour))
    stack.wait_drained()
    calls, record = calls_for_one_upload(stack, fake_rekognition, "uploads/group-2.png", group)
    assert calls.pop("IndexFaces", 0) >= 15  # the new references, indexed without a restart
    # One look at the collection (describe + list) to find what to index, then the upload's calls.
    assert calls == {
        "DescribeCollection": 1,
        "ListFaces": 1,
        "DetectFaces": 1,
        "SearchFacesByImage": 3,
    }
    calls, _ = calls_for_one_upload(stack, fake_rekognition, "uploads/group-3.png", group)
    assert calls == {"DetectFaces": 1, "SearchFacesByImage": 3}
    assert worker.proc.poll() is None


def test_compare_calls_grow_with_references(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition
) -> None:
    for index, colour in enumerate(PEOPLE[:6]):
        stack.put(f"references/person-{index}.png", face_png(colour))
    start_worker(STRATEGY="compare")
    calls, record = calls_for_one_upload(
        stack, fake_rekognition, "uploads/one.png", face_png(PEOPLE[2])
    )
    assert calls == {"DetectFaces": 1, "CompareFaces": 6}
    assert record["matches"][0]["label"] == "person-2"


def test_auto_picks_the_cheaper_strategy(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition
) -> None:
    stack.put("references/alice.png", face_png(ALICE))
    start_worker(STRATEGY="auto")
    calls, record = calls_for_one_upload(
        stack, fake_rekognition, "uploads/pair.png", face_png(ALICE, BOB)
    )
    assert record["strategy"] == "compare"  # 1 reference, 2 faces: 1 CompareFaces < 2 searches
    assert calls == {"DetectFaces": 1, "CompareFaces": 1}
    for index, colour in enumerate(PEOPLE[:4]):
        stack.put(f"references/person-{index}.png", face_png(colour))
    stack.wait_drained()
    _, record = calls_for_one_upload(stack, fake_rekognition, "uploads/few.png", face_png(ALICE))
    assert record["strategy"] == "compare"  # 5 references: too few to be worth a collection
    for index, colour in enumerate(PEOPLE[4:9], start=4):
        stack.put(f"references/person-{index}.png", face_png(colour))
    stack.wait_drained()
    _, record = calls_for_one_upload(stack, fake_rekognition, "uploads/solo.png", face_png(ALICE))
    assert record["strategy"] == "collection"  # 10 references, 1 face
    assert record["matches"][0]["label"] == "alice"


def test_reference_changes_take_effect_without_restart(
    stack: Stack, start_worker: StartWorker
) -> None:
    stack.put("references/alice.png", face_png(ALICE))
    worker = start_worker(STRATEGY="collection")
    stack.put("uploads/1.png", face_png(ALICE))
    assert stack.published(1)[0].record["matches"][0]["label"] == "alice"

    # Replaced: the label "alice" now shows BOB's face.
    stack.put("references/alice.png", face_png(BOB))
    stack.wait_drained()
    stack.put("uploads/2.png", face_png(BOB))
    stack.put("uploads/3.png", face_png(ALICE))
    results = {p.record["key"]: p.record for p in stack.published(2)}
    assert results["uploads/2.png"]["matches"][0]["label"] == "alice"
    assert results["uploads/3.png"]["status"] == "no_match"

    # Deleted: nobody is known any more.
    stack.s3.delete_object(Bucket=stack.bucket, Key="references/alice.png")
    stack.wait_drained()
    stack.put("uploads/4.png", face_png(BOB))
    assert stack.published(1)[0].record["status"] == "no_match"
    assert len(worker.events("reference_changed")) >= 3


def test_references_list_and_sync_cli(
    stack: Stack,
    fake_rekognition: FakeRekognition,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in stack.env(fake_rekognition.endpoint).items():
        monkeypatch.setenv(name, value)
    stack.put("references/alice.png", face_png(ALICE))
    stack.put("references/odd key + 100%/ü 1.png", face_png(BOB))
    stack.put("references/nobody.png", face_png())  # no face
    stack.put("references/pair.png", face_png(CAROL, ALICE, size=(240, 200)))  # two faces

    assert main(["references", "sync"]) == 0
    first = capsys.readouterr().out
    assert "4 references, 3 indexed now, 0 stale faces deleted, 1 without a face" in first
    assert main(["references", "sync"]) == 0
    assert "0 indexed now, 0 stale faces deleted" in capsys.readouterr().out

    assert main(["references", "list", "--json"]) == 0
    rows = {row["key"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["references/odd key + 100%/ü 1.png"]["label"] == "odd key + 100%"
    assert rows["references/odd key + 100%/ü 1.png"]["face_id"]
    assert rows["references/nobody.png"]["face_id"] is None
    assert rows["references/pair.png"]["face_id"]
    (collection,) = fake_rekognition.backend.collections.values()
    assert len(collection.faces) == 3, "one face per reference photo, the largest"

    stack.s3.delete_object(Bucket=stack.bucket, Key="references/alice.png")
    assert main(["references", "sync"]) == 0
    assert "1 stale faces deleted" in capsys.readouterr().out


def test_auto_keeps_to_compare_where_collections_are_unavailable(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition
) -> None:
    fake_rekognition.known_actions = {"DetectFaces", "CompareFaces"}  # the tutorial's two calls
    for index, colour in enumerate(PEOPLE[:10]):
        stack.put(f"references/person-{index}.png", face_png(colour))
    worker = start_worker()  # STRATEGY=auto, the default
    stack.put("uploads/1.png", face_png(PEOPLE[1]))
    stack.put("uploads/2.png", face_png(PEOPLE[3]))
    records = {p.record["key"]: p.record for p in stack.published(2)}
    assert records["uploads/1.png"]["matches"][0]["label"] == "person-1"
    assert records["uploads/2.png"]["matches"][0]["label"] == "person-3"
    assert {r["strategy"] for r in records.values()} == {"compare"}
    assert len(worker.events("collection_unavailable_using_compare")) == 1
