"""The face models: decode an image, find faces, embed them (dlib; no HTTP, no AWS state here).

- Decoding: Pillow, JPEG and PNG only (what Rekognition reads), EXIF orientation applied; boxes
  are ratios of the *oriented* image, as Rekognition reports them.
- Detection: dlib's HOG frontal-face detector, no upsampling, on a working copy whose longest side
  is :data:`WORKING_LONGEST_SIDE` (small photos are scaled up, large ones down: HOG needs faces of
  about 80 px, and this finds as many faces as upsampling at a quarter of the cost). When it finds
  none: the other three right-angle orientations, then a copy large enough for Rekognition's
  smallest face; weak hits need the CNN detector's agreement (:mod:`.detection`).
- Landmarks: the 5-point shape predictor (public domain; the 68-point model is not licensed for
  commercial use and is never loaded).
- Embedding: dlib's ResNet ``face_recognition_model_v1`` (128-d), computed lazily per face from an
  aligned 150 px chip, so detecting faces costs no embedding.

dlib model objects are not thread-safe: every dlib call goes through one lock.
"""

from __future__ import annotations

import importlib.resources
import io
import math
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import dlib
import numpy as np
from PIL import Image, ImageOps

from worker.local.engine import attributes, detection
from worker.local.engine.exceptions import ImageTooLargeException, InvalidImageFormatException

# Longest side, in pixels, of the copy faces are searched in (see the module docstring).
WORKING_LONGEST_SIDE = 1024
# dlib's aligned face chip for the ResNet model: 150 px with 25 % padding.
CHIP_SIZE = 150
CHIP_PADDING = 0.25
# HOG's own threshold (scores above it are faces). Real faces score from about 0 up (small faces
# in crowds), false ones up to 0.49 (scikit-image's astronaut: the mission patch, the name tag),
# so a threshold cannot separate them: weak hits need the CNN's agreement instead
# (detection.CONFIRM_BELOW_SCORE).
MIN_DETECTION_SCORE = 0.0
# Formats Rekognition accepts (Pillow's names).
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG"})
_MODEL_FILES = {
    "predictor": "shape_predictor_5_face_landmarks.dat",
    "recognizer": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
}
# PIL's transposes for quarter turns counter-clockwise (detection.Pass.turns).
_TURNS = {
    1: Image.Transpose.ROTATE_90,
    2: Image.Transpose.ROTATE_180,
    3: Image.Transpose.ROTATE_270,
}

# Logistic map from embedding distance to similarity (see :func:`similarity`).
_SIM_STEEPNESS = math.log(99 / 4) / 0.15  # k, from the two points: ln(99 / 4) / (0.60 - 0.45)
_SIM_MIDPOINT = 0.60 + math.log(4) / _SIM_STEEPNESS  # d at which similarity is 50


def similarity(distance: float) -> float:
    """Rekognition-style similarity 0-100 from the Euclidean distance of two embeddings.

    ``similarity = 100 / (1 + exp(k * (distance - d0)))`` with ``k ≈ 21.39`` and ``d0 ≈ 0.665``,
    the logistic curve through two calibration points measured on ``../shared/faces``:

    - distance 0.60 → 80 (the default threshold): 99.8 % of same-person pairs are closer, and
      every different-person pair closer than that was one look-alike pair;
    - distance 0.45 → 99: about 91 % of same-person pairs, no different-person pair.

    Other points: 0.30 → 99.96, 0.50 → 97.1, 0.665 → 50, 0.74 → 16.7, 0.90 → 0.65.
    """
    return 100.0 / (1.0 + math.exp(_SIM_STEEPNESS * (distance - _SIM_MIDPOINT)))


def detection_confidence(score: float) -> float:
    """Rekognition-style detection confidence 0-100 from a HOG detection score.

    HOG reports faces whose score is above 0 (typical faces score 0.5-3; the engine keeps those
    above :data:`MIN_DETECTION_SCORE`). The map is the logistic
    ``100 / (1 + exp(-(3 * score + 3)))``: score 0 → 95.3, 0.5 → 98.9, 1 → 99.75.
    """
    return 100.0 / (1.0 + math.exp(-(3.0 * score + 3.0)))


@dataclass(frozen=True)
class Box:
    """A bounding box as ratios of the oriented image's width and height (0-1)."""

    left: float
    top: float
    width: float
    height: float

    @property
    def area(self) -> float:
        return self.width * self.height


@dataclass(eq=False)
class Face:
    """One detected face. ``embedding`` is filled by :meth:`FaceModels.embed` when first needed."""

    box: Box
    confidence: float
    # Landmark name (Rekognition's: eyeLeft, eyeRight, nose) → (x, y) ratios.
    landmarks: dict[str, tuple[float, float]]
    roll: float
    # Pose estimated from the 5 landmarks and Quality measured on the face's pixels, see
    # :func:`pose` and :func:`quality`.
    yaw: float = 0.0
    pitch: float = 0.0
    brightness: float = 0.0
    sharpness: float = 0.0
    chip: Any = field(default=None, repr=False)
    embedding: Any = field(default=None, repr=False)
    # (age chip, gender chip): what the attribute networks read, see attributes.py.
    attribute_chips: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class Analysis:
    """The faces of one image, largest first, with the oriented image's size in pixels."""

    width: int
    height: int
    faces: tuple[Face, ...]


def decode(data: bytes) -> Image.Image:
    """Decode JPEG or PNG bytes into an upright RGB image scaled near the working size.

    Raises InvalidImageFormatException for anything else (empty, truncated, another format) and
    ImageTooLargeException for decompression bombs.
    """
    return _decode(data)[0]


def _decode(data: bytes) -> tuple[Image.Image, int]:
    """:func:`decode`, and the longest side of the image as sent (before any reduced decode)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ACCEPTED_FORMATS:
                raise InvalidImageFormatException("Request has unsupported image format")
            longest_side = max(image.size)
            scale = WORKING_LONGEST_SIDE / longest_side
            if scale < 1 and image.format == "JPEG":
                # Let libjpeg decode at 1/2, 1/4 or 1/8 size where that still covers the target.
                image.draft(
                    "RGB", (math.ceil(image.width * scale), math.ceil(image.height * scale))
                )
            image.load()
            oriented = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeException("Image size is too large.") from exc
    except InvalidImageFormatException:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidImageFormatException("Request has invalid image format") from exc
    return (oriented if oriented.mode == "RGB" else oriented.convert("RGB")), longest_side


def _working_copy(image: Image.Image, longest_side: int = WORKING_LONGEST_SIDE) -> Image.Image:
    scale = longest_side / max(image.size)
    if abs(scale - 1) < 0.02:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0 if scale < 1 else None)


class FaceModels:
    """dlib's detector, 5-point predictor and ResNet embedder, loaded once, used under a lock."""

    def __init__(self) -> None:
        files = importlib.resources.files("face_recognition_models") / "models"
        with importlib.resources.as_file(files / _MODEL_FILES["predictor"]) as path:
            self._predictor = dlib.shape_predictor(str(path))
        with importlib.resources.as_file(files / _MODEL_FILES["recognizer"]) as path:
            self._recognizer = dlib.face_recognition_model_v1(str(path))
        with importlib.resources.as_file(files / _MODEL_FILES["cnn_detector"]) as path:
            self._cnn_detector = dlib.cnn_face_detection_model_v1(str(path))
        self._detector = dlib.get_frontal_face_detector()
        self._get_face_chip = dlib.get_face_chip
        self._lock = threading.Lock()

    def analyse(self, data: bytes) -> Analysis:
        """Decode ``data`` and detect every face (no embeddings yet), largest first: upright on
        the working copy, then, while none is found, :func:`detection.passes`' fallbacks."""
        image, longest_side = _decode(data)
        base = _working_copy(image)
        faces: list[Face] = []
        for step in detection.passes(longest_side, WORKING_LONGEST_SIDE):
            work = base
            if step.longest_side != WORKING_LONGEST_SIDE:
                work = _working_copy(image, step.longest_side)
            if step.turns:
                work = work.transpose(_TURNS[step.turns])
            faces = [detection.turn_back(face, step.turns) for face in self._faces_in(work)]
            if faces:
                break
        faces.sort(key=lambda face: face.box.area, reverse=True)
        # The size of the image as sent (a large JPEG is decoded reduced): QualityFilter's pixel
        # widths are of the original, as Rekognition sees it.
        scale = longest_side / max(image.size)
        width, height = (max(1, round(side * scale)) for side in image.size)
        return Analysis(width=width, height=height, faces=tuple(faces))

    def _faces_in(self, work: Image.Image) -> list[Face]:
        """The faces HOG finds in ``work`` (weak ones only if the CNN agrees), in its frame."""
        pixels = np.asarray(work)
        with self._lock:
            hits, scores, _ = self._detector.run(pixels, 0, MIN_DETECTION_SCORE)
            kept = [
                (rect, score)
                for rect, score in zip(hits, scores, strict=True)
                if score >= detection.CONFIRM_BELOW_SCORE or self._confirmed(work, rect)
            ]
            rects = [rect for rect, _ in kept]
            scores = [score for _, score in kept]
            shapes = [self._predictor(pixels, rect) for rect in rects]
            chips = [
                self._get_face_chip(pixels, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
                for shape in shapes
            ]
            attribute_chips = [self._attribute_chips(pixels, shape) for shape in shapes]
        if not rects:
            return []
        gray = np.asarray(work.convert("L"), dtype=np.float32)
        faces = [
            _face(rect, score, shape, chip, gray)
            for rect, score, shape, chip in zip(rects, scores, shapes, chips, strict=True)
        ]
        for face, extra in zip(faces, attribute_chips, strict=True):
            face.attribute_chips = extra
        return faces

    def _confirmed(self, work: Image.Image, rect: Any) -> bool:
        """Whether the CNN detector finds a face where HOG found ``rect`` (under the lock)."""
        box, scale = detection.confirmation_crop(
            rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1
        )
        crop = work.crop(box)
        size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
        crop = crop.resize(size, Image.Resampling.BILINEAR)
        found = [
            (
                (d.rect.left() + d.rect.right()) / 2,
                (d.rect.top() + d.rect.bottom()) / 2,
                d.confidence,
            )
            for d in self._cnn_detector(np.asarray(crop), 0)
        ]
        return detection.confirms(found, crop.width, crop.height)

    def _attribute_chips(self, pixels: np.ndarray, shape: Any) -> tuple[Any, Any]:
        """The face aligned for the age and gender networks (:mod:`.attributes`)."""
        padding = attributes.CHIP_PADDING
        return (
            self._get_face_chip(pixels, shape, size=attributes.AGE_CHIP_SIZE, padding=padding),
            self._get_face_chip(pixels, shape, size=attributes.GENDER_CHIP_SIZE, padding=padding),
        )

    def embed(self, faces: list[Face] | tuple[Face, ...]) -> None:
        """Fill in the embedding of every face in ``faces`` that has none yet (one dlib call)."""
        with self._lock:
            todo = [face for face in faces if face.embedding is None]
            if not todo:
                return
            vectors = self._recognizer.compute_face_descriptor([face.chip for face in todo])
            for face, vector in zip(todo, vectors, strict=True):
                face.embedding = np.asarray(vector, dtype=np.float64)
                face.chip = None

    def similarity(self, a: Face, b: Face) -> float:
        """:func:`similarity` of the :func:`distance` of two embedded faces."""
        return similarity(distance(a, b))


def distance(a: Face, b: Face) -> float:
    """Euclidean distance between the embeddings of two faces (both must be embedded)."""
    return float(np.linalg.norm(a.embedding - b.embedding))


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


# Pose from the 5 landmarks: on the largest face of 73 photos of ../shared/faces (6 per person)
# the base of the nose lies 0.74 inter-eye distances below the eye line (median; 5th-95th
# percentile 0.64-0.87), which is taken as pitch 0.
NOSE_DROP = 0.74
# Sharpness: variance of the Laplacian of the face (grey levels, face scaled to 100 px wide)
# mapped to 0-100 by 100 * (1 - exp(-var / SHARPNESS_SCALE)).
SHARPNESS_SCALE = 300.0
QUALITY_FACE_WIDTH = 100


def pose(
    eye_left: tuple[float, float], eye_right: tuple[float, float], nose: tuple[float, float]
) -> tuple[float, float, float]:
    """(roll, yaw, pitch) in degrees from the eye centres and the base of the nose (pixels).

    Roll is the angle of the eye line. In the frame of the eye line, the nose's sideways offset
    from the eyes' midpoint, as a fraction of half the inter-eye distance, is the sine of the
    yaw (its sign: positive when the nose lies left of the midpoint in the image); its drop
    below the eye line against :data:`NOSE_DROP` gives the pitch (positive: looking up).
    An estimate from 5 points, good to some 10-15 degrees, never extrapolated past +-90.
    """
    dx, dy = eye_right[0] - eye_left[0], eye_right[1] - eye_left[1]
    span = math.hypot(dx, dy) or 1.0
    roll = math.degrees(math.atan2(dy, dx))
    ux, uy = dx / span, dy / span  # along the eye line; (-uy, ux) points down the face
    mx, my = (eye_left[0] + eye_right[0]) / 2, (eye_left[1] + eye_right[1]) / 2
    along = (nose[0] - mx) * ux + (nose[1] - my) * uy
    down = -(nose[0] - mx) * uy + (nose[1] - my) * ux
    yaw = -math.degrees(math.asin(max(-1.0, min(1.0, along / (span / 2)))))
    ratio = (down / span) / NOSE_DROP
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, 1.0 - ratio)))) if ratio > 0 else 90.0
    return roll, yaw, pitch


def quality(gray: np.ndarray) -> tuple[float, float]:
    """(Brightness, Sharpness), 0-100, of a face's grey pixels (0-255).

    Brightness is the mean grey level as a percentage. Sharpness is the variance of the
    4-neighbour Laplacian on the face scaled to :data:`QUALITY_FACE_WIDTH` px wide (so the size
    of the face does not count), mapped to 0-100 (see :data:`SHARPNESS_SCALE`).
    """
    if gray.size == 0:
        return 0.0, 0.0
    brightness = float(gray.mean()) / 255 * 100
    step = max(1, gray.shape[1] // QUALITY_FACE_WIDTH)
    small = gray[::step, ::step]
    if min(small.shape) < 3:
        return brightness, 0.0
    lap = (
        small[:-2, 1:-1]
        + small[2:, 1:-1]
        + small[1:-1, :-2]
        + small[1:-1, 2:]
        - 4 * small[1:-1, 1:-1]
    )
    sharpness = 100.0 * (1.0 - math.exp(-float(lap.var()) / SHARPNESS_SCALE))
    return min(100.0, max(0.0, brightness)), sharpness


def _face(rect: Any, score: float, shape: Any, chip: Any, gray: np.ndarray) -> Face:
    height, width = gray.shape
    left, top = max(0, rect.left()), max(0, rect.top())
    right, bottom = min(width, rect.right() + 1), min(height, rect.bottom() + 1)
    box = Box(
        left=_clamp(left / width),
        top=_clamp(top / height),
        width=_clamp((right - left) / width),
        height=_clamp((bottom - top) / height),
    )
    points = [(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)]
    # 5-point model: 0-1 and 2-3 are the corners of the two eyes, 4 is the base of the nose.
    eye_a = ((points[0][0] + points[1][0]) / 2, (points[0][1] + points[1][1]) / 2)
    eye_b = ((points[2][0] + points[3][0]) / 2, (points[2][1] + points[3][1]) / 2)
    eye_left, eye_right = sorted((eye_a, eye_b))
    angles = pose(eye_left, eye_right, points[4])
    measured = quality(gray[top:bottom, left:right])
    landmarks = {
        "eyeLeft": (_clamp(eye_left[0] / width), _clamp(eye_left[1] / height)),
        "eyeRight": (_clamp(eye_right[0] / width), _clamp(eye_right[1] / height)),
        "nose": (_clamp(points[4][0] / width), _clamp(points[4][1] / height)),
    }
    # Positional, in field order: box, confidence, landmarks, roll, yaw, pitch, brightness,
    # sharpness.
    return Face(box, detection_confidence(float(score)), landmarks, *angles, *measured, chip=chip)
