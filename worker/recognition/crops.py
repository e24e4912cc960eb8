"""Cut one face out of an image so that SearchFacesByImage (which searches only the largest face
of what it is sent) can be asked about each face of a group photo. Pure: bytes in, bytes out."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from worker.faces import Box

# Context kept around the face box, as a fraction of the box's size on each side.
CROP_MARGIN = 0.6
# Crops smaller than this are scaled up: Rekognition wants faces of at least ~40-80 px.
MIN_CROP_SIDE_PX = 240
JPEG_QUALITY = 90


def crop_face(data: bytes, box: Box) -> bytes:
    """A JPEG of ``box`` (ratios of the oriented image) with some margin around it."""
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    width, height = image.size
    left = (box.left - box.width * CROP_MARGIN) * width
    top = (box.top - box.height * CROP_MARGIN) * height
    right = (box.left + box.width * (1 + CROP_MARGIN)) * width
    bottom = (box.top + box.height * (1 + CROP_MARGIN)) * height
    crop = image.crop(
        (
            max(int(left), 0),
            max(int(top), 0),
            min(int(right) + 1, width),
            min(int(bottom) + 1, height),
        )
    )
    shortest = min(crop.size)
    if 0 < shortest < MIN_CROP_SIDE_PX:
        scale = MIN_CROP_SIDE_PX / shortest
        crop = crop.resize((round(crop.width * scale), round(crop.height * scale)))
    out = io.BytesIO()
    crop.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
