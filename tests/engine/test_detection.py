"""Where the engine looks for faces (worker/local/engine/detection.py): the search plan, faces
found in a turned image mapped back to the original's frame, the CNN's confirmation of weak hits;
then the real thing on ../shared/faces and scikit-image's astronaut."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.engine.conftest import FaceCache, jpeg
from worker.local.engine import detection
from worker.local.engine.models import Box, Face, FaceModels, distance, similarity

THRESHOLD = 80.0
TRANSPOSE = {
    1: Image.Transpose.ROTATE_90,
    2: Image.Transpose.ROTATE_180,
    3: Image.Transpose.ROTATE_270,
}


# --- the plan -------------------------------------------------------------------------------


def test_rekognition_minimum_face_meets_hogs_smallest_face() -> None:
    # 40 px in 1920 x 1080 (limits.html): the copy where 40 px become HOG's 64 is 3072 px long.
    assert detection.small_face_side(1920) == 3072
    # Larger images need proportionally larger faces: the same copy.
    assert detection.small_face_side(4000) == 3072
    # Smaller images: 40 px whatever the size.
    assert detection.small_face_side(1000) == 1600
    assert detection.min_face_fraction(1000) == pytest.approx(0.04)


def test_passes_upright_then_turns_then_small_faces() -> None:
    plan = detection.passes(1920, 1024)
    assert plan[0] == detection.Pass(1024)
    assert sorted(p.turns for p in plan[1:4]) == [1, 2, 3]
    assert all(p.longest_side == 1024 for p in plan[:4])
    assert plan[4] == detection.Pass(3072)
    # Where the working copy already holds a 40 px face at HOG's size, no larger copy.
    assert detection.passes(640, 1024) == plan[:4]


# --- turned faces back to the original frame ------------------------------------------------


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_unturn_matches_pillows_transpose(turns: int) -> None:
    """A marked pixel, turned by Pillow and mapped back by unturn, lands where it was."""
    width, height = 40, 30
    for x, y in [(0, 0), (39, 0), (5, 20), (39, 29)]:
        image = Image.new("L", (width, height))
        image.putpixel((x, y), 255)
        turned = np.asarray(image.transpose(TRANSPOSE[turns]))
        ty, tx = (int(v[0]) for v in np.nonzero(turned))
        th, tw = turned.shape
        ux, uy = detection.unturn(((tx + 0.5) / tw, (ty + 0.5) / th), turns)
        assert (ux, uy) == pytest.approx(((x + 0.5) / width, (y + 0.5) / height))


def test_unturn_four_turns_is_identity() -> None:
    assert detection.unturn((0.2, 0.7), 4) == pytest.approx((0.2, 0.7))
    assert detection.unturn((0.2, 0.7), 0) == (0.2, 0.7)


def test_turn_roll_stays_in_rekognitions_range() -> None:
    assert detection.turn_roll(-3.0, 1) == pytest.approx(87.0)
    assert detection.turn_roll(170.0, 1) == pytest.approx(-100.0)
    assert detection.turn_roll(10.0, 2) == pytest.approx(-170.0)
    assert detection.turn_roll(5.0, 3) == pytest.approx(-85.0)
    for roll in range(-180, 181, 15):
        for turns in range(4):
            assert -180.0 <= detection.turn_roll(float(roll), turns) <= 180.0


def _face(box: Box, landmarks: dict[str, tuple[float, float]], roll: float) -> Face:
    return Face(box, 99.0, landmarks, roll, 4.0, -2.0, 50.0, 60.0, chip="chip")


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_turn_back_keeps_box_landmarks_and_roll_consistent(turns: int) -> None:
    # A level face in the turned image (roll 0: the eyes on one row, left to right).
    size = (300, 200)  # the turned image, width x height
    face = _face(
        Box(0.4, 0.3, 0.2, 0.3),
        {"eyeLeft": (0.45, 0.4), "eyeRight": (0.55, 0.4), "nose": (0.5, 0.48)},
        0.0,
    )
    back = detection.turn_back(face, turns)
    original = size if turns == 2 else size[::-1]
    # Every landmark inside the box, in the original frame.
    for x, y in back.landmarks.values():
        assert back.box.left <= x <= back.box.left + back.box.width
        assert back.box.top <= y <= back.box.top + back.box.height
    # The roll is the angle of the eye line, measured in the original's pixels.
    (lx, ly), (rx, ry) = back.landmarks["eyeLeft"], back.landmarks["eyeRight"]
    angle = math.degrees(math.atan2((ry - ly) * original[1], (rx - lx) * original[0]))
    assert detection.turn_roll(angle, 0) == pytest.approx(back.roll)
    assert back.box.area * original[0] * original[1] == pytest.approx(
        face.box.area * size[0] * size[1]
    )
    # What belongs to the face, not the frame, stays.
    assert (back.yaw, back.pitch, back.brightness, back.sharpness) == (4.0, -2.0, 50.0, 60.0)
    assert back.chip == "chip"


def test_turn_back_upright_is_the_same_face() -> None:
    face = _face(Box(0.1, 0.1, 0.2, 0.2), {"nose": (0.2, 0.2)}, 3.0)
    assert detection.turn_back(face, 0) is face


# --- the CNN's confirmation ----------------------------------------------------------------


def test_confirmation_crop_scales_the_box_to_the_cnn_size() -> None:
    box, scale = detection.confirmation_crop(100, 200, 150, 250)
    assert box == (80, 180, 170, 270)  # 0.9 box widths each side of the centre
    assert scale == pytest.approx(2.0)  # 50 px → 100 px


def test_confirms_only_a_face_where_hog_saw_one() -> None:
    assert detection.confirms([(90.0, 92.0, 1.02)], 180, 180)
    assert not detection.confirms([(90.0, 92.0, -0.2)], 180, 180)  # not a face to the CNN
    assert not detection.confirms([(20.0, 90.0, 1.1)], 180, 180)  # a face, elsewhere
    assert not detection.confirms([], 180, 180)


# --- on real photos -------------------------------------------------------------------------


def _photo(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


@pytest.mark.faces
@pytest.mark.parametrize("turns", [1, 2, 3])
def test_turned_photo_without_exif_is_found_in_its_own_frame(
    faces_dir: Path, models: FaceModels, face_cache: FaceCache, turns: int
) -> None:
    path = faces_dir / "obama" / "obama.jpg"
    upright = face_cache.largest(path)
    analysis = models.analyse(jpeg(_photo(path).transpose(TRANSPOSE[turns])))
    assert len(analysis.faces) == 1
    face = analysis.faces[0]
    expected = detection.unturn_box(upright.box, (4 - turns) % 4)  # upright → turned frame
    assert (face.box.left, face.box.top, face.box.width, face.box.height) == pytest.approx(
        (expected.left, expected.top, expected.width, expected.height), abs=0.02
    )
    assert abs(detection.turn_roll(face.roll - upright.roll - 90 * (4 - turns), 0)) < 3
    models.embed([face])
    assert similarity(distance(face, upright)) >= 99


@pytest.mark.faces
def test_face_at_rekognitions_minimum_size_is_found(
    faces_dir: Path, models: FaceModels, face_cache: FaceCache
) -> None:
    """A face 48 px wide (Rekognition's minimum is 40) in a 1920 x 1080 frame."""
    path = faces_dir / "obama" / "obama.jpg"
    upright = face_cache.largest(path)
    image = _photo(path)
    width = upright.box.width * image.width
    cx = (upright.box.left + upright.box.width / 2) * image.width
    cy = (upright.box.top + upright.box.height / 2) * image.height
    crop = image.crop((round(cx - width), round(cy - width), round(cx + width), round(cy + width)))
    crop = crop.resize((2 * 48, 2 * 48), Image.Resampling.LANCZOS)
    frame = _photo(faces_dir / "_noface" / "dog.jpg").resize((1920, 1080))
    frame.paste(crop, (900, 500))
    faces = models.analyse(jpeg(frame)).faces
    assert len(faces) == 1
    assert faces[0].box.width * 1920 == pytest.approx(48, rel=0.25)
    box = faces[0].box
    assert box.left * 1920 < 948 < (box.left + box.width) * 1920


@pytest.mark.faces
def test_turned_no_face_photos_stay_without_faces(faces_dir: Path, models: FaceModels) -> None:
    for path in sorted((faces_dir / "_noface").iterdir()):
        image = _photo(path)
        for turns in (1, 3):
            assert models.analyse(jpeg(image.transpose(TRANSPOSE[turns]))).faces == (), path.name


@pytest.mark.parametrize("degrees", [-15, -10, 0, 5, 10])
def test_astronauts_patch_is_not_a_face(models: FaceModels, degrees: int) -> None:
    """scikit-image's astronaut, whole, tilted: HOG also scores her mission patch, her name tag
    or her glove 0.01-0.49; only her face is a face."""
    data = pytest.importorskip("skimage.data", reason="the sample photo needs the 'demo' extra")
    photo = Image.fromarray(data.astronaut()).rotate(
        degrees, resample=Image.Resampling.BICUBIC, expand=True
    )
    out = io.BytesIO()
    photo.save(out, "PNG")
    faces = models.analyse(out.getvalue()).faces
    assert len(faces) == 1
    assert faces[0].box.top < 0.35  # her face, in the upper third


def test_a_large_jpeg_is_measured_at_the_size_it_was_sent(models: FaceModels) -> None:
    """libjpeg decodes a 4096 px photo at a quarter; QualityFilter's SMALL_BOUNDING_BOX must still
    judge face widths in the photo's own pixels (a 60 px face is not a 15 px one)."""
    analysis = models.analyse(jpeg(Image.new("RGB", (4096, 2304), (128, 128, 128))))
    assert (analysis.width, analysis.height) == (4096, 2304)
