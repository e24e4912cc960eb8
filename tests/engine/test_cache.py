"""The analysis cache's byte bound (LRU eviction, single flight kept) and what a collection keeps
of an indexed face."""

from __future__ import annotations

import gc
import threading
import tracemalloc
from pathlib import Path

import numpy as np

from worker.local.engine.backend import (
    ENTRY_OVERHEAD_BYTES,
    FACE_OVERHEAD_BYTES,
    AnalysisCache,
    ImageSource,
    RekognitionBackend,
    face_bytes,
    searchable,
)
from worker.local.engine.models import Analysis, Box, Face, FaceModels

CHIP = (150, 150, 3)  # the embedding network's chip, uint8: 67,500 bytes
CHIP_BYTES = 150 * 150 * 3
EMBEDDING_BYTES = 128 * 8


def face(chip: bool = True) -> Face:
    return Face(
        Box(0.1, 0.1, 0.5, 0.5),
        99.0,
        {"eyeLeft": (0.2, 0.3), "eyeRight": (0.4, 0.3), "nose": (0.3, 0.4)},
        0.0,
        chip=np.zeros(CHIP, np.uint8) if chip else None,
    )


def analysis(faces: int = 1) -> Analysis:
    return Analysis(640, 480, tuple(face() for _ in range(faces)))


def one_face_entry() -> int:
    return ENTRY_OVERHEAD_BYTES + FACE_OVERHEAD_BYTES + CHIP_BYTES


def test_a_face_counts_its_arrays_and_its_overhead() -> None:
    detected = face()
    assert face_bytes(detected) == FACE_OVERHEAD_BYTES + CHIP_BYTES
    # Arrays in a tuple count too (the attribute chips), and so does the embedding.
    detected.chip = (np.zeros((64, 64, 3), np.uint8), np.zeros((32, 32, 3), np.uint8))
    detected.embedding = np.zeros(128)
    assert face_bytes(detected) == FACE_OVERHEAD_BYTES + 12_288 + 3_072 + EMBEDDING_BYTES


def test_the_cache_stays_within_its_bytes_evicting_the_least_recently_used() -> None:
    cache = AnalysisCache(max_bytes=3 * one_face_entry())
    for key in "abc":
        cache.get(key, analysis)
    assert cache.nbytes() == 3 * one_face_entry() and len(cache) == 3
    cache.get("a", analysis)  # a hit: "b" is now the least recently used
    cache.get("d", analysis)
    assert cache.nbytes() <= cache.max_bytes
    assert cache.evictions == 1
    misses = cache.misses
    for key in "acd":
        cache.get(key, analysis)
    assert cache.misses == misses  # still cached
    cache.get("b", analysis)
    assert cache.misses == misses + 1  # evicted, analysed again


def test_a_large_analysis_evicts_as_many_entries_as_it_needs() -> None:
    cache = AnalysisCache(max_bytes=4 * one_face_entry())
    for key in "abcd":
        cache.get(key, analysis)
    cache.get("crowd", lambda: analysis(faces=3))
    assert len(cache) == 2  # the crowd and "d": "a", "b", "c" made room for it
    assert cache.nbytes() <= cache.max_bytes
    # An analysis larger than the whole budget is returned but not kept.
    huge = cache.get("huge", lambda: analysis(faces=5))
    assert len(huge.faces) == 5
    assert len(cache) == 0


def test_embedded_faces_make_room() -> None:
    """A face's chip is dropped once it is embedded: the entries are measured again."""
    embedded_entry = ENTRY_OVERHEAD_BYTES + FACE_OVERHEAD_BYTES + EMBEDDING_BYTES
    cache = AnalysisCache(max_bytes=2 * one_face_entry() + embedded_entry)
    first = cache.get("a", analysis)
    first.faces[0].chip, first.faces[0].embedding = None, np.zeros(128)
    cache.get("b", analysis)
    cache.get("c", analysis)
    assert len(cache) == 3
    assert cache.nbytes() <= cache.max_bytes


def test_an_image_being_analysed_is_kept_and_analysed_once() -> None:
    """Concurrent requests for one image wait for the first analysis, even while other images
    push the cache over its budget."""
    cache = AnalysisCache(max_bytes=2 * one_face_entry())
    started, release = threading.Event(), threading.Event()
    computed: list[str] = []

    def slow() -> Analysis:
        computed.append("slow")
        started.set()
        release.wait()
        return analysis()

    results: list[Analysis] = []
    first = threading.Thread(target=lambda: results.append(cache.get("slow", slow)))
    first.start()
    started.wait()
    for key in "abcde":  # each fill evicts, but never the slot still in flight
        cache.get(key, analysis)
    second = threading.Thread(target=lambda: results.append(cache.get("slow", slow)))
    second.start()
    release.set()
    first.join()
    second.join()
    assert computed == ["slow"]
    assert results[0] is results[1]
    assert cache.nbytes() <= cache.max_bytes


def test_a_collection_keeps_the_embedding_not_the_chips() -> None:
    detected = face()
    detected.embedding = np.ones(128)
    kept = searchable(detected)
    assert kept.chip is None and kept.embedding is detected.embedding
    assert (kept.box, kept.landmarks, kept.confidence) == (
        detected.box,
        detected.landmarks,
        detected.confidence,
    )
    assert face_bytes(kept) == FACE_OVERHEAD_BYTES + EMBEDDING_BYTES
    assert detected.chip is not None  # the cached analysis keeps its own


class ChipFaces:
    """A face decoder whose faces carry chips, as dlib's do: one face per image."""

    def analyse(self, data: bytes) -> Analysis:
        return analysis()

    def embed(self, faces: list[Face]) -> None:
        for each in faces:
            each.embedding = np.ones(128)

    def similarity(self, a: Face, b: Face) -> float:
        return 100.0


def test_indexed_faces_hold_no_chips_but_index_faces_answers_with_them() -> None:
    backend = RekognitionBackend(lambda: None, models=ChipFaces())
    backend.create_collection("c")
    records, _ = backend.index_faces("c", ImageSource(data=b"photo"), None, None, "NONE")
    assert records[0].face.chip is not None  # what IndexFaces describes (FaceDetail)
    (stored,) = backend.list_faces("c")
    assert stored.face_id == records[0].face_id
    assert stored.face.chip is None and stored.face.embedding is not None
    assert face_bytes(stored.face) == FACE_OVERHEAD_BYTES + EMBEDDING_BYTES


def test_the_estimate_is_near_what_tracemalloc_counts(models: FaceModels, faces_dir: Path) -> None:
    """On corpus photos, before and after embedding: within 25 % of the traced bytes."""
    photos = [p for p in sorted(faces_dir.glob("*/*")) if p.suffix.lower() in {".jpg", ".png"}]
    datas = [path.read_bytes() for path in photos if path.read_bytes()[:2] == b"\xff\xd8"][:40]
    models.embed(models.analyse(datas[0]).faces)  # one-time allocations, outside the measure
    for embed in (False, True):
        gc.collect()
        tracemalloc.start()
        try:
            kept = [models.analyse(data) for data in datas]
            if embed:
                for each in kept:
                    models.embed(each.faces)
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        estimated = sum(face_bytes(f) for each in kept for f in each.faces)
        assert sum(len(each.faces) for each in kept) > 40
        assert 0.75 * traced <= estimated <= 1.25 * traced, (embed, estimated, traced)
