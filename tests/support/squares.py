"""Coloured squares as faces: test images whose "faces" are cheap to draw and to find.

A test image is a PNG of coloured squares on white (:func:`face_png`): each square is a face and
its colour is the person. :class:`ColouredSquares` is a face decoder for the local engine
(:class:`worker.local.engine.backend.FaceDecoder`): it decodes an image as the engine does (JPEG
and PNG only, EXIF orientation applied, :func:`worker.local.engine.models.decode`), finds the
squares, and scores two faces 99.3 when their colours are the same and below 60 otherwise.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from worker.local.engine.models import Analysis, Box, Face, decode

Colour = tuple[int, int, int]

WHITE: Colour = (255, 255, 255)
ALICE: Colour = (200, 40, 40)
BOB: Colour = (40, 40, 200)
CAROL: Colour = (40, 160, 40)
# Colours are quantised to multiples of this before they are compared (JPEG noise).
QUANTUM = 40
# A quantised colour whose channels differ by less than this is background (white, grey, black).
MIN_SATURATION = 60
# A square smaller than this many pixels is noise, not a face.
MIN_FACE_PIXELS = 64
# Every other pixel of every other row is looked at: each stands for 4 pixels.
STEP = 2
SAME_PERSON = 99.3
FACE_CONFIDENCE = 99.9


def face_png(*faces: Colour, size: tuple[int, int] = (240, 160)) -> bytes:
    """A PNG with one coloured square per face, left to right; no faces → a blank image."""
    image = Image.new("RGB", size, WHITE)
    side = min(size[1] // 2, size[0] // (2 * max(len(faces), 1)))
    for index, colour in enumerate(faces):
        left = 10 + index * (side + 10)
        image.paste(colour, (left, 20, left + side, 20 + side))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def colour_similarity(a: Colour, b: Colour) -> float:
    """99.3 for the same colour, else 60 less a tenth of the colours' L1 distance (at least 5)."""
    distance = sum(abs(x - y) for x, y in zip(a, b, strict=True))
    return SAME_PERSON if distance == 0 else max(5.0, 60.0 - distance / 10)


def find_faces(data: bytes) -> list[Face]:
    """The squares of an image (JPEG or PNG bytes), largest first (see :meth:`analyse`)."""
    return list(ColouredSquares().analyse(data).faces)


class ColouredSquares:
    """The engine's face decoder for coloured squares: a face's embedding is its colour."""

    def analyse(self, data: bytes) -> Analysis:
        """The squares, largest first: by pixels of their colour (JPEG noise may spread a few
        pixels of one colour over a large box), then left to right."""
        image = decode(data)
        found = _squares(np.asarray(image, dtype=np.int32))
        found.sort(key=lambda square: (-square[0], square[1].box.left))
        return Analysis(image.width, image.height, tuple(face for _, face in found))

    def embed(self, faces: list[Face]) -> None:
        """Nothing to do: a square's colour is set when it is found."""

    def similarity(self, a: Face, b: Face) -> float:
        return colour_similarity(a.embedding, b.embedding)


def _squares(pixels: np.ndarray) -> list[tuple[int, Face]]:
    """(pixels, face) for each colour that covers at least :data:`MIN_FACE_PIXELS`."""
    height, width = pixels.shape[:2]
    sample = np.rint(pixels[::STEP, ::STEP] / QUANTUM).astype(np.int32) * QUANTUM
    coloured = sample.max(axis=2) - sample.min(axis=2) >= MIN_SATURATION
    rows, cols = np.nonzero(coloured)
    found = sample[rows, cols]
    codes = (found[:, 0] << 16) | (found[:, 1] << 8) | found[:, 2]
    faces = []
    for code in np.unique(codes):
        mine = codes == code
        count = int(mine.sum()) * STEP * STEP
        if count < MIN_FACE_PIXELS:
            continue
        x0, x1 = int(cols[mine].min()) * STEP, int(cols[mine].max()) * STEP
        y0, y1 = int(rows[mine].min()) * STEP, int(rows[mine].max()) * STEP
        box = Box(
            left=x0 / width,
            top=y0 / height,
            width=(x1 - x0 + STEP) / width,
            height=(y1 - y0 + STEP) / height,
        )
        colour = (int(code) >> 16, (int(code) >> 8) & 0xFF, int(code) & 0xFF)
        faces.append((count, _face(box, colour)))
    return faces


def _face(box: Box, colour: Colour) -> Face:
    """A square as the engine reports a face: frontal, sharp, lit as bright as its colour."""
    cx = box.left + box.width / 2
    landmarks = {
        "eyeLeft": (box.left + box.width * 0.3, box.top + box.height * 0.35),
        "eyeRight": (box.left + box.width * 0.7, box.top + box.height * 0.35),
        "nose": (cx, box.top + box.height * 0.6),
    }
    luma = (0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]) / 255 * 100
    return Face(
        box=box,
        confidence=FACE_CONFIDENCE,
        landmarks=landmarks,
        roll=0.0,
        brightness=luma,
        sharpness=100.0,
        embedding=colour,
    )
