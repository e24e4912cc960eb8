"""Where the engine looks for faces, and which of HOG's hits it keeps (pure: no dlib here).

Search plan (:func:`passes`): each pass runs only when every earlier one found no face, so an
image with a face costs one HOG pass, as before; the fallbacks cost only on no-face images.

1. Upright, on the working copy (:data:`~worker.local.engine.models.WORKING_LONGEST_SIDE`).
2. The other three right-angle orientations, same copy turned (:data:`TURN_ORDER`): photos without
   EXIF orientation (re-encoded, screenshots, scanners) reach the engine on their side. Faces are
   reported in the original image's frame (:func:`turn_back`); their chips, hence embeddings,
   come from the upright copy.
3. Upright, on a copy large enough for the smallest face Rekognition documents to reach HOG's
   smallest reliable face (:func:`small_face_side`): "a face must be no smaller than 40x40 pixels
   in an image with 1920X1080 pixels. Images with dimensions higher than 1920X1080 pixels will
   need a larger minimum face size proportionally" (Amazon Rekognition Developer Guide,
   *Guidelines and quotas*, https://docs.aws.amazon.com/rekognition/latest/dg/limits.html).

False faces: HOG's weak hits (score under :data:`CONFIRM_BELOW_SCORE`) are kept only when dlib's
CNN face detector (mmod, public domain, shipped in face-recognition-models) finds a face at the same
place in a small crop around the hit (:func:`confirmation_crop`, :func:`confirms`). Run on a whole
image the CNN is too slow and memory-hungry (5.1 s at 1024 px, 0.4-0.9 GB at 640-1024 px); on a
180 px crop it costs about 0.2 s. Measured on ../shared/faces, scikit-image's sample photos and
their variants: docs/local-engine.md, ``bench/engine_variants.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.local.engine.models import Box, Face

# Rekognition's smallest detectable face: 40 px in a 1920 x 1080 image, proportionally larger in
# larger ones (limits.html, see the module docstring); here as a fraction of the longest side.
REKOGNITION_MIN_FACE_PX = 40
REKOGNITION_FRAME_PX = 1920
# HOG's smallest face (box width, px) found reliably: boxes of 60 px 24 of 24 corpus faces, 50 px
# 17 of 24, 40 px none (faces pasted on a no-face photo, upsample 0); 64 leaves a margin.
HOG_SMALLEST_FACE_PX = 64
# Quarter turns (counter-clockwise, as PIL's ROTATE_90) tried when the upright image has no face:
# first the turn that undoes the commonest loss (a portrait photo stored landscape whose EXIF
# orientation 6 was dropped: the scene's top points left), then the opposite, then upside down.
TURN_ORDER = (3, 1, 2)
# HOG scores below this need the CNN's agreement. False faces seen on the sample photos and their
# tilted, shrunk and grey variants scored 0.01-0.49; about 1 in 7 real faces of the variant set
# scores under 1.0 (mostly small faces in crowds and degraded copies).
CONFIRM_BELOW_SCORE = 1.0
# The crop the CNN looks at: the HOG box's centre, this many box widths to each side, scaled so
# that the box is CONFIRM_FACE_PX wide (of 817 real hits, the CNN missed 8 at 80 px, 1 at 100).
CONFIRM_HALF_SIDE = 0.9
CONFIRM_FACE_PX = 100
# The CNN's face must have its centre within this fraction of CONFIRM_FACE_PX of the crop's centre.
CONFIRM_MAX_OFFSET = 0.35


@dataclass(frozen=True)
class Pass:
    """One search: the working copy's longest side, and the quarter turns applied to it."""

    longest_side: int
    turns: int = 0


def min_face_fraction(original_longest_side: int) -> float:
    """Rekognition's smallest detectable face, as a fraction of the image's longest side."""
    return REKOGNITION_MIN_FACE_PX / min(REKOGNITION_FRAME_PX, original_longest_side)


def small_face_side(original_longest_side: int) -> int:
    """The longest side of a copy on which Rekognition's smallest face is HOG's smallest face."""
    return round(HOG_SMALLEST_FACE_PX / min_face_fraction(original_longest_side))


def passes(original_longest_side: int, working_side: int) -> list[Pass]:
    """The searches for one image, in order (see the module docstring)."""
    plan = [Pass(working_side)] + [Pass(working_side, turns) for turns in TURN_ORDER]
    small = small_face_side(original_longest_side)
    if small > working_side:
        plan.append(Pass(small))
    return plan


def unturn(point: tuple[float, float], turns: int) -> tuple[float, float]:
    """A point (x, y as ratios of width and height) of the image turned ``turns`` quarter turns
    counter-clockwise, in the frame of the image before the turns."""
    x, y = point
    for _ in range(turns % 4):
        x, y = 1.0 - y, x
    return x, y


def unturn_box(box: Box, turns: int) -> Box:
    """:func:`unturn` for a box: both corners, then the box that spans them."""
    x1, y1 = unturn((box.left, box.top), turns)
    x2, y2 = unturn((box.left + box.width, box.top + box.height), turns)
    return dataclasses.replace(
        box, left=min(x1, x2), top=min(y1, y2), width=abs(x2 - x1), height=abs(y2 - y1)
    )


def turn_roll(roll: float, turns: int) -> float:
    """The roll (degrees, -180..180) of a face found in the image turned ``turns`` quarter turns
    counter-clockwise, in the frame before the turns: the face is turned back clockwise."""
    turned = roll + 90.0 * (turns % 4)
    return (turned + 180.0) % 360.0 - 180.0


def turn_back(face: Face, turns: int) -> Face:
    """``face``, found in the image turned ``turns`` quarter turns counter-clockwise, in the
    frame of the original image: box, every landmark and the roll. Yaw, pitch, quality, chips and
    embedding belong to the face, not the frame, and stay."""
    if turns % 4 == 0:
        return face
    return dataclasses.replace(
        face,
        box=unturn_box(face.box, turns),
        landmarks={name: unturn(point, turns) for name, point in face.landmarks.items()},
        roll=turn_roll(face.roll, turns),
    )


def confirmation_crop(
    left: int, top: int, right: int, bottom: int
) -> tuple[tuple[int, int, int, int], float]:
    """The crop (left, top, right, bottom; working-copy pixels, may reach past the edges) around
    a HOG box that the CNN looks at, and the scale that makes the box CONFIRM_FACE_PX wide."""
    width = max(1, right - left)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    half = CONFIRM_HALF_SIDE * width
    box = (round(cx - half), round(cy - half), round(cx + half), round(cy + half))
    return box, CONFIRM_FACE_PX / width


def confirms(found: list[tuple[float, float, float]], crop_width: int, crop_height: int) -> bool:
    """Whether the CNN's detections in the crop — (centre x, centre y, confidence) in the scaled
    crop's pixels — include a face (confidence > 0) centred where HOG's was."""
    limit = CONFIRM_MAX_OFFSET * CONFIRM_FACE_PX
    return any(
        confidence > 0 and abs(x - crop_width / 2) <= limit and abs(y - crop_height / 2) <= limit
        for x, y, confidence in found
    )
