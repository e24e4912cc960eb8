"""worker.annotate: the matched faces' boxes land on the right pixels, upright as Rekognition
sees the picture (EXIF orientation applied)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.records import a_record
from worker.annotate import PALETTE, annotate, pixel_box
from worker.errors import InvalidImageError
from worker.faces import Box, Candidate
from worker.results import ResultRecord

GREY = (128, 128, 128)
RED, BLUE = (230, 20, 20), (20, 20, 230)
# JPEG moves colours a little, more at sharp edges.
TOLERANCE = 40
EXIF_ORIENTATION = 0x0112


def _record(*boxes: Box) -> ResultRecord:
    return a_record(
        faces_detected=len(boxes),
        matches=[
            Candidate(f"person_{i}", f"references/person_{i}.jpg", 99.5 - i, box)
            for i, box in enumerate(boxes)
        ],
    )


def _jpeg(image: Image.Image, orientation: int | None = None) -> bytes:
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[EXIF_ORIENTATION] = orientation
    image.save(out, format="JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image.convert("RGB")


def _near(pixel: object, colour: tuple[int, int, int]) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(int(a) - b) <= TOLERANCE for a, b in zip(pixel, colour, strict=True))


def test_the_box_is_drawn_on_its_pixels_and_nowhere_else() -> None:
    upload = _jpeg(Image.new("RGB", (400, 200), GREY))
    box = Box(left=0.25, top=0.3, width=0.5, height=0.6)  # pixels (100, 60) to (300, 180)
    assert pixel_box(box, 400, 200) == (100, 60, 300, 180)
    out = _open(annotate(upload, _record(box)))
    assert out.size == (400, 200)
    colour = PALETTE[0]
    # Lines are drawn inward from the box's edges, 3 px wide here (MIN_LINE_PX).
    for edge in [(101, 120), (101, 150), (299, 120), (299, 150), (200, 179), (200, 61)]:
        assert _near(out.getpixel(edge), colour), edge
    for inside in [(200, 120), (106, 170), (294, 170)]:
        assert _near(out.getpixel(inside), GREY), inside
    for outside in [(95, 120), (305, 120), (200, 185), (20, 20)]:
        assert _near(out.getpixel(outside), GREY), outside
    # The caption sits on a band of the box's colour right above it.
    assert _near(out.getpixel((102, 58)), colour)


def test_each_match_has_its_own_colour() -> None:
    upload = _jpeg(Image.new("RGB", (400, 200), GREY))
    first, second = Box(0.05, 0.4, 0.3, 0.5), Box(0.6, 0.4, 0.3, 0.5)
    out = _open(annotate(upload, _record(first, second)))
    assert _near(out.getpixel((21, 150)), PALETTE[0])  # first box's left edge (x = 20)
    assert _near(out.getpixel((241, 150)), PALETTE[1])  # second box's left edge (x = 240)


def test_boxes_are_ratios_of_the_upright_picture_as_rekognition_reports_them() -> None:
    # Stored 200 wide x 400 high, red on top, blue below; EXIF orientation 6 says "turn 90
    # degrees clockwise to show": upright it is 400 x 200, blue on the left, red on the right.
    stored = Image.new("RGB", (200, 400), RED)
    stored.paste(BLUE, (0, 200, 200, 400))
    upload = _jpeg(stored, orientation=6)
    out = _open(annotate(upload, _record(Box(0.5, 0.25, 0.25, 0.5))))  # (200, 50)-(300, 150)
    assert out.size == (400, 200)
    assert _near(out.getpixel((50, 100)), BLUE)
    assert _near(out.getpixel((350, 100)), RED)
    assert _near(out.getpixel((299, 100)), PALETTE[0])  # the box's right edge
    assert _near(out.getpixel((250, 100)), RED)  # inside the box: the picture


def test_a_record_without_matches_gives_the_picture_as_it_is() -> None:
    upload = _jpeg(Image.new("RGB", (300, 300), GREY))
    out = _open(annotate(upload, _record()))
    assert out.size == (300, 300)
    extrema = out.getextrema()
    assert all(abs(low - 128) <= 3 and abs(high - 128) <= 3 for low, high in extrema)  # type: ignore[misc]


def test_a_file_that_is_not_an_image_says_so() -> None:
    with pytest.raises(InvalidImageError, match="not an image"):
        annotate(b"hello, I am a text file", _record())


def test_a_box_past_the_edge_is_clipped_to_the_picture() -> None:
    assert pixel_box(Box(0.9, -0.1, 0.3, 0.5), 100, 100) == (90, 0, 99, 40)
