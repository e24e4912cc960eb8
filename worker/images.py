"""Pure image checks and conversions (no I/O): sniff the real format, convert what Rekognition
cannot read into JPEG bytes within its limits. Owned by the hostile-input issue; this is the
first cut.
"""

from __future__ import annotations

from worker.errors import InvalidImageError

# How many leading bytes `sniff` needs.
SNIFF_BYTES = 32
# Rekognition's own limits.
REKOGNITION_MAX_S3_OBJECT_BYTES = 15 * 1024 * 1024
REKOGNITION_MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Formats Rekognition reads as they are.
NATIVE_FORMATS = frozenset({"jpeg", "png"})


def sniff(head: bytes) -> str | None:
    """The image format named by the leading bytes, or None when they name no image we know."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:2] == b"BM":
        return "bmp"
    if head[4:8] == b"ftyp" and head[8:12] in (
        b"heic",
        b"heix",
        b"mif1",
        b"msf1",
        b"heim",
        b"hevc",
    ):
        return "heif"
    return None


def to_rekognition_jpeg(data: bytes, fmt: str) -> bytes:
    """Decode ``data`` (of sniffed format ``fmt``) and re-encode it as a JPEG Rekognition accepts."""
    raise InvalidImageError(f"{fmt.upper()} images are not supported yet")


def needs_conversion(fmt: str, size_bytes: int) -> bool:
    """True when a JPEG/PNG cannot go to Rekognition as an S3 object as it is."""
    return fmt not in NATIVE_FORMATS or size_bytes > REKOGNITION_MAX_S3_OBJECT_BYTES
