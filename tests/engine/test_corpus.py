"""The engine on the shared face corpus (../shared/faces, skipped when absent).

Same-person pairs must reach 80 and different-person pairs stay under it, on a subset of the
corpus (the first PER_PERSON photos of each identity) so that the run stays fast; the full corpus
is measured by bench/calibrate_engine.py. Known exceptions are listed, never hidden by a looser
threshold.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import FaceCache
from worker.local.engine.models import distance, similarity

pytestmark = pytest.mark.faces

THRESHOLD = 80.0
PER_PERSON = 3
# Files Rekognition refuses (and so does the engine): df_p03/img47.jpg is a WebP named .jpg.
NOT_JPEG_OR_PNG = {"df_p03/img47.jpg"}
# Same-person pairs under 80 on the whole corpus: none (bench/calibrate_engine.py).
KNOWN_MISSES: set[frozenset[str]] = set()
# Different-person pairs at or over 80. None between largest faces on the whole corpus; one in
# _multi: the man in couple.jpg (not in the corpus) looks like df_p05 (img59: 86.9, img62: 79.6).
KNOWN_FALSE_MATCHES = {("couple.jpg", "df_p05/img59.jpg")}
# Who is in the _multi photos, and how many faces HOG finds there.
MULTI_FACES = {
    "two_people.jpg": (2, {"obama", "biden"}),
    # The third face is real: a girl at the lower right.
    "obama_and_biden.jpg": (3, {"obama", "biden"}),
    "kit_with_rose.jpg": (2, {"kit_harington", "rose_leslie"}),
    "couple.jpg": (2, {"df_p01"}),
    "2008_001009.jpg": (2, set()),
}


def name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def identities(faces_dir: Path) -> dict[str, list[Path]]:
    people = {}
    for folder in sorted(faces_dir.iterdir()):
        if folder.is_dir() and not folder.name.startswith("_"):
            photos = [p for p in sorted(folder.iterdir()) if name(p) not in NOT_JPEG_OR_PNG]
            people[folder.name] = photos[:PER_PERSON]
    return people


def test_same_person_pairs_reach_the_threshold(faces_dir: Path, face_cache: FaceCache) -> None:
    failures = []
    pairs = 0
    for photos in identities(faces_dir).values():
        for a, b in itertools.combinations(photos, 2):
            pairs += 1
            score = similarity(distance(face_cache.largest(a), face_cache.largest(b)))
            if score < THRESHOLD and frozenset({name(a), name(b)}) not in KNOWN_MISSES:
                failures.append(f"{name(a)} ~ {name(b)}: {score:.1f}")
    assert pairs > 30
    assert not failures


def test_different_person_pairs_stay_under_the_threshold(
    faces_dir: Path, face_cache: FaceCache
) -> None:
    people = identities(faces_dir)
    failures = []
    pairs = 0
    for p, q in itertools.combinations(sorted(people), 2):
        for a, b in itertools.product(people[p], people[q]):
            pairs += 1
            score = similarity(distance(face_cache.largest(a), face_cache.largest(b)))
            if score >= THRESHOLD:
                failures.append(f"{name(a)} ~ {name(b)}: {score:.1f}")
    assert pairs > 500
    assert not failures


@pytest.mark.parametrize("special", ["_scales", "_partial"])
def test_scaled_and_partial_obama_match_obama(
    faces_dir: Path, face_cache: FaceCache, special: str
) -> None:
    reference = face_cache.largest(faces_dir / "obama" / "obama.jpg")
    for path in sorted((faces_dir / special).iterdir()):
        assert similarity(distance(face_cache.largest(path), reference)) >= THRESHOLD, path.name


@pytest.mark.parametrize("photo", sorted(MULTI_FACES))
def test_multi_face_photos(faces_dir: Path, face_cache: FaceCache, photo: str) -> None:
    count, present = MULTI_FACES[photo]
    faces = face_cache.faces(faces_dir / "_multi" / photo)
    assert len(faces) == count
    for label, photos in identities(faces_dir).items():
        scores = {
            name(ref): max(similarity(distance(f, face_cache.largest(ref))) for f in faces)
            for ref in photos
        }
        if label in present:
            assert max(scores.values()) >= THRESHOLD, (label, scores)
        else:
            wrong = {
                ref: s
                for ref, s in scores.items()
                if s >= THRESHOLD and (photo, ref) not in KNOWN_FALSE_MATCHES
            }
            assert not wrong, (label, wrong)


def test_crowds_are_detected(faces_dir: Path, face_cache: FaceCache) -> None:
    assert len(face_cache.faces(faces_dir / "_multi" / "2007_007763.jpg")) >= 5
    assert len(face_cache.faces(faces_dir / "_multi" / "bald_guys.jpg")) >= 20


def test_no_face_photos_through_boto3(faces_dir: Path, rekognition: Any) -> None:
    reference = (faces_dir / "obama" / "obama.jpg").read_bytes()
    rekognition.create_collection(CollectionId="noface-search")
    try:
        for path in sorted((faces_dir / "_noface").iterdir()):
            data = path.read_bytes()
            assert rekognition.detect_faces(Image={"Bytes": data})["FaceDetails"] == []
            with pytest.raises(rekognition.exceptions.InvalidParameterException):
                rekognition.compare_faces(
                    SourceImage={"Bytes": data}, TargetImage={"Bytes": reference}
                )
            with pytest.raises(rekognition.exceptions.InvalidParameterException):
                rekognition.search_faces_by_image(
                    CollectionId="noface-search", Image={"Bytes": data}
                )
            # As a target too: "If no faces are detected in the source or target images,
            # CompareFaces returns an InvalidParameterException error" (API_CompareFaces).
            with pytest.raises(rekognition.exceptions.InvalidParameterException):
                rekognition.compare_faces(
                    SourceImage={"Bytes": reference}, TargetImage={"Bytes": data}
                )
    finally:
        rekognition.delete_collection(CollectionId="noface-search")


def test_webp_named_jpg_is_refused_like_rekognition(faces_dir: Path, rekognition: Any) -> None:
    data = (faces_dir / "df_p03" / "img47.jpg").read_bytes()
    with pytest.raises(rekognition.exceptions.InvalidImageFormatException):
        rekognition.detect_faces(Image={"Bytes": data})


def test_multi_photo_through_compare_faces(faces_dir: Path, rekognition: Any) -> None:
    group = (faces_dir / "_multi" / "two_people.jpg").read_bytes()
    for person in ("obama", "biden"):
        source = (faces_dir / person / f"{person}.jpg").read_bytes()
        answer = rekognition.compare_faces(
            SourceImage={"Bytes": source}, TargetImage={"Bytes": group}
        )
        assert len(answer["FaceMatches"]) == 1, person
        assert len(answer["UnmatchedFaces"]) == 1, person
        assert answer["FaceMatches"][0]["Similarity"] >= THRESHOLD
