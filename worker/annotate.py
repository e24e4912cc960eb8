"""Pictures of results: each matched face's box, label and similarity drawn on the upload. Pure.

The boxes of a record are ratios of the image *as Rekognition saw it*: EXIF orientation applied
("the bounding box coordinates are translated to represent object locations after the orientation
information in the Exif metadata is used to correct the image orientation",
https://docs.aws.amazon.com/rekognition/latest/dg/images-orientation.html), and for formats the
worker converts, the converted JPEG (:func:`worker.images.to_rekognition_jpeg`, which applies the
orientation too). So the upload is decoded the way the worker converts it — upright, first frame,
RGB, longest side at most :data:`worker.images.MAX_SIDE_PX` — and the ratios are laid on that.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

from worker.faces import Box
from worker.images import SNIFF_BYTES, sniff, to_rekognition_jpeg
from worker.results import Match, ResultRecord

# One colour per label, in the order the record lists them (best match first).
PALETTE = (
    (255, 64, 64),
    (64, 200, 255),
    (255, 200, 0),
    (120, 255, 80),
    (255, 96, 255),
    (255, 150, 40),
)
TEXT_COLOUR = (0, 0, 0)
JPEG_QUALITY = 90
# Line width and text height as fractions of the picture's shorter side (with floors).
LINE_FRACTION = 1 / 150
TEXT_FRACTION = 1 / 25
MIN_LINE_PX = 3
MIN_TEXT_PX = 12


def colour_for(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def caption(match: Match) -> str:
    return f"{match.label} {match.similarity:.1f}%"


def pixel_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """The box's corners in pixels (left, top, right, bottom), clipped to the picture."""
    left = min(max(round(box.left * width), 0), width - 1)
    top = min(max(round(box.top * height), 0), height - 1)
    right = min(max(round((box.left + box.width) * width), left), width - 1)
    bottom = min(max(round((box.top + box.height) * height), top), height - 1)
    return left, top, right, bottom


def upright(data: bytes) -> Image.Image:
    """The upload as Rekognition sees it (see the module docstring), RGB.

    :class:`InvalidImageError` when ``data`` is not an image the worker could read.
    """
    # to_rekognition_jpeg sniffs the bytes itself and raises InvalidImageError for a non-image.
    jpeg = to_rekognition_jpeg(data, sniff(data[:SNIFF_BYTES]) or "unknown")
    with Image.open(io.BytesIO(jpeg)) as im:
        return im.convert("RGB")


def draw_matches(image: Image.Image, matches: tuple[Match, ...]) -> Image.Image:
    """A copy of ``image`` with each match's box and caption drawn on it."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    short = min(out.size)
    line = max(MIN_LINE_PX, round(short * LINE_FRACTION))
    font = ImageFont.load_default(size=max(MIN_TEXT_PX, round(short * TEXT_FRACTION)))
    for index, match in enumerate(matches):
        colour = colour_for(index)
        left, top, right, bottom = pixel_box(match.face, *out.size)
        draw.rectangle((left, top, right, bottom), outline=colour, width=line)
        text = caption(match)
        _, _, text_w, text_h = draw.textbbox((0, 0), text, font=font)
        pad = line
        # Above the box when there is room, else just inside its top edge.
        y = top - text_h - 2 * pad if top - text_h - 2 * pad >= 0 else top + line
        x = min(left, max(out.width - text_w - 2 * pad, 0))
        draw.rectangle((x, y, x + text_w + 2 * pad, y + text_h + 2 * pad), fill=colour)
        draw.text((x + pad, y + pad), text, fill=TEXT_COLOUR, font=font)
    return out


def annotate(data: bytes, record: ResultRecord) -> bytes:
    """JPEG bytes: the upload ``data``, upright, with the record's matched faces drawn on it.

    Records without matches give the picture as it is. :class:`InvalidImageError` when ``data``
    is not a readable image (an ``invalid_image`` record's upload, typically).
    """
    picture = draw_matches(upright(data), record.matches)
    out = io.BytesIO()
    # 4:4:4: full-resolution colour keeps thin coloured lines and captions crisp.
    picture.save(out, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return out.getvalue()
