"""Pure image checks and conversions (no I/O): sniff the real format, convert what Rekognition
cannot read into JPEG bytes within its limits.

Hostile input is the normal case here: every failure leaves as :class:`InvalidImageError` whose
message says in words what was wrong (it becomes the ``reason`` of an ``invalid_image`` result).
Pillow only ever sees the decoder of the format sniffed from the bytes (``Image.open(formats=…)``),
so a file cannot steer it to another plugin (EPS would run Ghostscript). Pixel dimensions are read
from the header and checked against :data:`MAX_IMAGE_PIXELS` before anything is decoded.

Decoding has a memory budget: a small file can hold a huge picture (a 300 KB 16-bit TIFF of
10,000 x 10,000 px took 1.3 GB), so the pixel cap is set for what conversion costs, at most
:data:`DECODE_SLOTS` decodes run at once (the others wait for their turn), and a picture is scaled
down in the mode it decodes to before any other step (``bench/decode_memory.py`` measures it).
"""

from __future__ import annotations

import io
import math
import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from PIL import Image, ImageOps, UnidentifiedImageError

from worker.errors import InvalidImageError

# How many leading bytes `sniff` needs.
SNIFF_BYTES = 32
# Rekognition's own limits.
REKOGNITION_MAX_S3_OBJECT_BYTES = 15 * 1024 * 1024
REKOGNITION_MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Rekognition: images must be at least 80 px on each side.
REKOGNITION_MIN_SIDE_PX = 80
# Longest side we send. Rekognition wants faces of 40 px in a 1920 x 1080 frame and bigger ones,
# proportionally, in bigger frames: it gains nothing from more than about 1920 px, while every
# step after the decode (resampling, mode conversion, encoding) costs memory by the square of it.
MAX_SIDE_PX = 2048
# Refuse to convert images that decode to more pixels than this. Every format but JPEG is decoded
# whole before it can be scaled down, at up to 4 bytes a pixel plus the decoder's own buffers and
# copies (DECODE_WORST_BYTES), so this cap is what bounds one decode. Rekognition needs nowhere near
# the old 100 MP (see MAX_SIDE_PX); 25 MP admits the largest photos the converted formats come in
# by default (24 MP HEIC from recent iPhones, 5712 x 4284). A baseline JPEG counts at the scale
# libjpeg decodes it (`_draft_jpeg`: under 17 MP), a progressive one whole (libjpeg then holds all
# its coefficients). Far below Pillow's hard limit (2 x Image.MAX_IMAGE_PIXELS, 179 MP).
MAX_IMAGE_PIXELS = 25_000_000
# Lower caps for formats whose decoder needs more: Pillow decodes WebP through libwebp's animation
# decoder, which keeps two canvases besides Pillow's two copies (16-20 bytes a pixel). WebP pictures
# come from the web, seldom above a few megapixels.
FORMAT_MAX_PIXELS: Final[dict[str, int]] = {"webp": 16_000_000}
# The most one decode at these caps took over the idle process (bench/decode_memory.py on
# 2026-11-27, solo runs: 297 MB for an RGBA WebP of 4000 x 4000, 248 MB for an RGBA PNG of 25 MP).
DECODE_WORST_BYTES = 300 * 1024 * 1024
# Memory the decodes in flight may take together: a worker at CONCURRENCY=8 stays within 400 MB
# (about 70 MB idle, the rest for the uploads in flight). DECODE_SLOTS decodes run at once; the
# others wait for their turn (conversion is CPU-bound: on a task of 0.5 vCPU waiting costs little).
DECODE_MEMORY_BUDGET = 320 * 1024 * 1024
DECODE_SLOTS = max(1, DECODE_MEMORY_BUDGET // DECODE_WORST_BYTES)
# Steps of integer reduction before the final resampling (Image.thumbnail's ``reducing_gap``).
REDUCING_GAP = 2.0
# JPEG quality of converted images, then lower steps tried while the result passes 5 MB.
JPEG_QUALITIES = (90, 80, 70, 55)
# Formats Rekognition reads as they are.
NATIVE_FORMATS = frozenset({"jpeg", "png"})
# Formats `to_rekognition_jpeg` converts, and the Pillow decoders each may use.
PIL_FORMATS: Final[dict[str, tuple[str, ...]]] = {
    "jpeg": ("JPEG",),
    "png": ("PNG",),
    "webp": ("WEBP",),
    "gif": ("GIF",),
    "tiff": ("TIFF",),
    "bmp": ("BMP",),
    "heif": ("HEIF", "AVIF"),
    "avif": ("AVIF", "HEIF"),
}

# The sign in "30000 by 30000 pixels" reasons.
_BY = "\N{MULTIPLICATION SIGN}"
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
_AVIF_BRANDS = (b"avif", b"avis")
# Things people upload that are not images, by their first bytes, for a reason in words.
_KNOWN_NON_IMAGES = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"GIF8", "a damaged GIF"),
    (b"<svg", "an SVG drawing (Rekognition reads only raster images)"),
    (b"<?xml", "an XML document"),
    (b"<!DOCTYPE", "an HTML page"),
    (b"<html", "an HTML page"),
    (b"{", "JSON or text"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x01\x00", "a Windows icon"),
    (b"ID3", "an MP3 file"),
)

# We refuse large images ourselves with a clearer message; Pillow's warning would only be noise.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)

_heif_lock = threading.Lock()
_heif_registered = False
_decoder = ThreadPoolExecutor(DECODE_SLOTS, thread_name_prefix="image-decode")


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
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS or (
            brand in (b"mif1", b"msf1") and b"avif" in head[16:SNIFF_BYTES]
        ):
            return "avif"
        if brand in _HEIF_BRANDS:
            return "heif"
    return None


def needs_conversion(fmt: str, size_bytes: int) -> bool:
    """True when the object cannot go to Rekognition as an S3 object as it is.

    JPEG and PNG up to 15 MB go as they are (Rekognition applies EXIF orientation itself); other
    formats, and JPEG/PNG over 15 MB, go through :func:`to_rekognition_jpeg`.
    """
    return fmt not in NATIVE_FORMATS or size_bytes > REKOGNITION_MAX_S3_OBJECT_BYTES


def describe_non_image(head: bytes) -> str:
    """Why ``head`` is not an image, in words: ``not an image (starts with '%PDF-1.4')``."""
    if not head:
        return "empty object (0 bytes)"
    kind = next((name for magic, name in _KNOWN_NON_IMAGES if head.startswith(magic)), None)
    if head[4:8] == b"ftyp":
        kind = f"an unsupported ISO media file (brand {_shown(head[8:12])})"
    printable = len(head) - len(head.lstrip(bytes(range(32, 127))))
    start = _shown(head[: min(printable, 8)]) if printable >= 3 else "bytes " + head[:8].hex(" ")
    return (
        f"not an image: {kind} (starts with {start})"
        if kind
        else f"not an image (starts with {start})"
    )


def to_rekognition_jpeg(data: bytes, fmt: str, *, max_pixels: int = MAX_IMAGE_PIXELS) -> bytes:
    """Decode ``data`` (of sniffed format ``fmt``) and re-encode it as a JPEG Rekognition accepts.

    First frame only (GIF, animated WebP, multi-page TIFF); EXIF orientation applied;
    transparency flattened onto white; longest side at most :data:`MAX_SIDE_PX`; at most 5 MB.
    Raises :class:`InvalidImageError` — and nothing else — for anything that is not such an image.
    """
    if not data:
        raise InvalidImageError("empty object (0 bytes)")
    sniffed = sniff(data[:SNIFF_BYTES])
    if sniffed is None:
        raise InvalidImageError(describe_non_image(data[:SNIFF_BYTES]))
    # The bytes, not the caller's (or the extension's) word, decide the format. Decoding happens on
    # the decode threads only (their queue is the wait for a turn), so that the memory one decode
    # frees is reused by the next instead of staying in the malloc arena of each calling thread.
    return _decoder.submit(_converted, data, sniffed, max_pixels).result()


# --------------------------------------------------------------------------- decoding


def _converted(data: bytes, fmt: str, max_pixels: int) -> bytes:
    name = _name(fmt)
    max_pixels = min(max_pixels, FORMAT_MAX_PIXELS.get(fmt, max_pixels))
    try:
        with _open(data, fmt, name, max_pixels) as image:
            return _encode(_normalised(image))
    except InvalidImageError:
        raise
    except Image.DecompressionBombError as exc:
        size = _header_size(data, fmt) or _pixels_in(str(exc))
        raise InvalidImageError(f"image too large: {size} (limit {max_pixels:,} pixels)") from None
    except MemoryError:
        raise InvalidImageError(f"{name} too large to decode") from None
    except (EOFError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(_decode_failure(name, exc, data)) from None
    except Exception as exc:  # noqa: BLE001 - hostile bytes reach Pillow's decoders; none may escape
        raise InvalidImageError(
            f"corrupt {name} ({type(exc).__name__}: {_short(str(exc))})"
        ) from None


def _open(data: bytes, fmt: str, name: str, max_pixels: int) -> Image.Image:
    """Open (header only) with the sniffed format's decoders; refuse too many pixels."""
    formats = PIL_FORMATS.get(fmt)
    if formats is None:
        raise InvalidImageError(f"unsupported image format {name}")
    if "HEIF" in formats:
        _register_heif()
    image = Image.open(io.BytesIO(data), formats=list(formats))
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise InvalidImageError(f"{name} has no pixels ({width}{_BY}{height})")
    progressive = fmt == "jpeg" and "progression" in image.info
    if fmt == "jpeg":
        _draft_jpeg(image)
    decoded = width * height if progressive else image.width * image.height
    if decoded > max_pixels:
        image.close()
        kind = " for a progressive JPEG" if progressive else ""
        kind = f" for {name}" if fmt in FORMAT_MAX_PIXELS else kind
        raise InvalidImageError(
            f"image too large: {width}{_BY}{height} pixels (limit {max_pixels:,} pixels{kind})"
        )
    return image


def _draft_jpeg(image: Image.Image) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the target is that much smaller.

    The picture it decodes then has less than 2 x MAX_SIDE_PX a side (under 17 MP). Sized here
    rather than by `thumbnail`, whose draft asks for the whole square box.
    """
    width, height = image.size
    scale = min(1.0, MAX_SIDE_PX / max(width, height))
    image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))


def _header_size(data: bytes, fmt: str) -> str | None:
    """``W by H pixels`` from the header alone, bypassing Pillow's bomb check (which only counts)."""
    for name in PIL_FORMATS.get(fmt, ()):
        factory = Image.OPEN.get(name)
        if factory is None:
            continue
        try:
            width, height = factory[0](io.BytesIO(data), "").size
        except Exception:  # noqa: BLE001, S112 - best effort, only for a better message
            continue
        return f"{width}{_BY}{height} pixels"
    return None


def _register_heif() -> None:
    """Register pillow-heif's HEIF decoder with Pillow, once, on first use."""
    global _heif_registered  # noqa: PLW0603 - a one-time, lock-guarded registration
    with _heif_lock:
        if not _heif_registered:
            import pillow_heif  # noqa: PLC0415 - only HEIF uploads pay for loading libheif

            pillow_heif.register_heif_opener()
            _heif_registered = True


def _normalised(image: Image.Image) -> Image.Image:
    """First frame, longest side ≤ MAX_SIDE_PX, upright, RGB, each side ≥ the minimum.

    Scaled down first, in the mode the picture decodes to, so that orientation and mode conversion
    work on at most MAX_SIDE_PX² pixels instead of copying the whole picture.
    """
    if image.mode in ("1", "P", "PA"):
        # Pillow resamples these with the nearest pixel only: into 8 bits a channel first.
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    # Pillow cannot `reduce` 16-bit greyscale, only resample it.
    gap = None if image.mode.startswith("I;16") else REDUCING_GAP
    image.thumbnail((MAX_SIDE_PX, MAX_SIDE_PX), Image.Resampling.LANCZOS, reducing_gap=gap)
    image.load()
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a damaged EXIF block must not reject a readable picture
        upright = image
    rgb = _to_rgb(upright)
    width, height = rgb.size
    if min(width, height) < REKOGNITION_MIN_SIDE_PX:
        raise InvalidImageError(
            f"image too small: {width}{_BY}{height} pixels "
            f"(Rekognition needs at least {REKOGNITION_MIN_SIDE_PX} on each side)"
        )
    return rgb


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16-bit, 32-bit and float greyscale (TIFF, PNG): stretch to 8 bits rather than clip at 255.
        # `point` keeps I;16 at 2 bytes a pixel; only the other byte orders go through I (4 bytes).
        deep = image if mode in ("I;16", "I", "F") else image.convert("I")
        extrema = deep.getextrema()
        low, high = float(extrema[0]), float(extrema[1])  # type: ignore[arg-type]
        span = (high - low) or 1.0
        grey = deep.point(lambda value: (value - low) * (255.0 / span)).convert("L")
        return grey.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _encode(image: Image.Image) -> bytes:
    """JPEG bytes within Rekognition's 5 MB: lower the quality, then the size, until it fits."""
    while True:
        for quality in JPEG_QUALITIES:
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=quality, optimize=True)
            if out.tell() <= REKOGNITION_MAX_IMAGE_BYTES:
                return out.getvalue()
        width, height = image.size
        smaller = (max(1, width * 3 // 4), max(1, height * 3 // 4))
        if min(smaller) < REKOGNITION_MIN_SIDE_PX:
            raise InvalidImageError("image cannot be made into a JPEG of 5 MB or less")
        image = image.resize(smaller, Image.Resampling.LANCZOS)


# --------------------------------------------------------------------------- words


def _name(fmt: str) -> str:
    return {"heif": "HEIC/HEIF", "jpeg": "JPEG"}.get(fmt, fmt.upper())


def _decode_failure(name: str, exc: BaseException, data: bytes) -> str:
    detail = str(exc)
    lowered = detail.lower()
    if (
        isinstance(exc, EOFError)
        or "truncated" in lowered
        or "end of file" in lowered
        or ("broken data stream" in lowered)
    ):
        return f"truncated {name} ({len(data):,} bytes)"
    if isinstance(exc, UnidentifiedImageError) or "cannot identify" in lowered:
        return f"corrupt or truncated {name} (its header cannot be read)"
    return f"corrupt {name} ({_short(detail) or type(exc).__name__})"


def _pixels_in(message: str) -> str:
    match = re.search(r"\((\d+) pixels\)", message)
    return f"{int(match.group(1)):,} pixels" if match else "too many pixels"


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_text(raw: bytes) -> bool:
    return all(32 <= b < 127 for b in raw)


def _shown(raw: bytes) -> str:
    return repr(raw.decode("latin-1")) if _is_text(raw) else "bytes " + raw.hex(" ")
