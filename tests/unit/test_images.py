"""worker.images: hostile bytes only ever give InvalidImageError; real images become valid JPEGs."""

from __future__ import annotations

import io
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pillow_heif
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from worker import images
from worker.errors import InvalidImageError

pillow_heif.register_heif_opener()  # for *writing* HEIF samples; the worker registers lazily

# Pillow's writer name and our sniffed name for every format we convert.
WRITERS = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "gif": "GIF",
    "tiff": "TIFF",
    "bmp": "BMP",
    "heif": "HEIF",
    "avif": "AVIF",
}
MODES = {
    "jpeg": ["RGB", "L", "CMYK"],
    "png": ["RGB", "RGBA", "L", "LA", "P", "1", "I;16"],
    "webp": ["RGB", "RGBA"],
    "gif": ["P", "L", "RGB"],
    "tiff": ["RGB", "RGBA", "L", "1", "CMYK", "I;16", "F"],
    "bmp": ["RGB", "L", "P", "1"],
    "heif": ["RGB", "RGBA"],
    "avif": ["RGB"],
}
BY = "\N{MULTIPLICATION SIGN}"
MAGICS = [
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"GIF89a",
    b"GIF87a",
    b"II*\x00",
    b"MM\x00*",
    b"BM",
    b"\x00\x00\x00\x18ftypheic",
    b"\x00\x00\x00\x18ftypmif1",
    b"\x00\x00\x00\x1cftypavif",
]


def make_image(fmt: str, size: tuple[int, int], mode: str = "RGB", **save: object) -> bytes:
    image = Image.linear_gradient("L").resize(size).convert(mode if mode != "I;16" else "I")
    if mode == "I;16":
        image = image.point(lambda v: v * 200).convert("I;16")
    out = io.BytesIO()
    image.save(out, format=WRITERS[fmt], **save)
    return out.getvalue()


def assert_valid_jpeg(data: bytes) -> Image.Image:
    assert data.startswith(b"\xff\xd8\xff")
    assert len(data) <= images.REKOGNITION_MAX_IMAGE_BYTES
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.format == "JPEG"
        assert image.mode == "RGB"
        assert max(image.size) <= images.MAX_SIDE_PX
        assert min(image.size) >= images.REKOGNITION_MIN_SIDE_PX
        return image


def convert(data: bytes, fmt: str = "jpeg") -> bytes | None:
    """to_rekognition_jpeg, with InvalidImageError (the only allowed failure) as None."""
    try:
        out = images.to_rekognition_jpeg(data, fmt)
    except InvalidImageError as exc:
        reason = str(exc)
    else:
        assert_valid_jpeg(out)
        return out
    assert reason, "the reason must say something"
    return None


# ----------------------------------------------------------------------------- hostile bytes


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=4096), fmt=st.sampled_from(sorted(WRITERS)))
@example(data=b"", fmt="jpeg")
@example(data=b"\xff\xd8\xff", fmt="png")
def test_arbitrary_bytes_only_raise_invalid_image(data: bytes, fmt: str) -> None:
    convert(data, fmt)


@settings(max_examples=400, deadline=None)
@given(magic=st.sampled_from(MAGICS), rest=st.binary(max_size=2048))
def test_bytes_behind_a_real_signature_only_raise_invalid_image(magic: bytes, rest: bytes) -> None:
    data = magic + rest
    convert(data, images.sniff(data[: images.SNIFF_BYTES]) or "jpeg")


@pytest.fixture(scope="module")
def samples() -> dict[str, bytes]:
    return {fmt: make_image(fmt, (160, 120)) for fmt in WRITERS}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fmt=st.sampled_from(sorted(WRITERS)),
    cut=st.integers(min_value=0, max_value=10_000),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
)
def test_truncated_or_damaged_real_images_only_raise_invalid_image(
    samples: dict[str, bytes], fmt: str, cut: int, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(samples[fmt][: max(cut, 1)])
    for position, value in flips:
        data[position % len(data)] = value
    convert(bytes(data), fmt)


# ----------------------------------------------------------------------------- real images


@settings(max_examples=80, deadline=None)
@given(
    fmt_mode=st.sampled_from([(f, m) for f, modes in MODES.items() for m in modes]),
    width=st.integers(images.REKOGNITION_MIN_SIDE_PX, 700),
    height=st.integers(images.REKOGNITION_MIN_SIDE_PX, 700),
)
def test_real_small_images_become_valid_jpegs(
    fmt_mode: tuple[str, str], width: int, height: int
) -> None:
    fmt, mode = fmt_mode
    data = make_image(fmt, (width, height), mode)
    assert images.sniff(data[: images.SNIFF_BYTES]) == fmt
    out = images.to_rekognition_jpeg(data, fmt)
    image = assert_valid_jpeg(out)
    assert image.size == (width, height)


def test_the_bytes_decide_the_format_not_the_caller() -> None:
    png = make_image("png", (100, 100))
    assert_valid_jpeg(images.to_rekognition_jpeg(png, "gif"))


def test_first_frame_of_an_animated_gif() -> None:
    frames = [Image.new("RGB", (100, 100), colour) for colour in ("red", "blue", "green")]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    with Image.open(io.BytesIO(images.to_rekognition_jpeg(out.getvalue(), "gif"))) as image:
        red, green, blue = image.convert("RGB").getpixel((50, 50))  # type: ignore[misc]
        assert red > 200
        assert max(green, blue) < 60


def test_transparency_is_flattened_onto_white() -> None:
    out = io.BytesIO()
    Image.new("RGBA", (100, 100), (0, 0, 0, 0)).save(out, format="PNG")
    with Image.open(io.BytesIO(images.to_rekognition_jpeg(out.getvalue(), "png"))) as image:
        assert min(image.getpixel((50, 50))) > 240  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "tiff", "png"])
def test_exif_orientation_is_applied(fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    data = make_image(fmt, (300, 100), exif=exif.tobytes())
    with Image.open(io.BytesIO(images.to_rekognition_jpeg(data, fmt))) as image:
        assert image.size == (100, 300)


def test_wide_images_are_scaled_down_keeping_their_shape() -> None:
    data = make_image("png", (5000, 1200))
    with Image.open(io.BytesIO(images.to_rekognition_jpeg(data, "png"))) as result:
        assert result.size[0] == images.MAX_SIDE_PX
        assert abs(result.size[0] / result.size[1] - 5000 / 1200) < 0.02


def test_quality_then_size_drop_until_the_jpeg_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "REKOGNITION_MAX_IMAGE_BYTES", 60_000)
    out = io.BytesIO()
    Image.effect_noise((600, 600), 100).convert("RGB").save(out, format="PNG")
    result = images.to_rekognition_jpeg(out.getvalue(), "png")
    assert len(result) <= 60_000
    with Image.open(io.BytesIO(result)) as image:
        assert image.size[0] < 600
        assert image.size[0] >= images.REKOGNITION_MIN_SIDE_PX


def test_a_huge_jpeg_is_decoded_at_reduced_scale() -> None:
    out = io.BytesIO()
    Image.new("RGB", (9000, 6000), "grey").save(out, format="JPEG")
    result = assert_valid_jpeg(images.to_rekognition_jpeg(out.getvalue(), "jpeg"))
    assert result.size[0] == images.MAX_SIDE_PX
    assert abs(result.size[1] - images.MAX_SIDE_PX * 2 / 3) < 1


# ----------------------------------------------------------------------------- reasons in words


def _reason(data: bytes, fmt: str = "jpeg") -> str:
    with pytest.raises(InvalidImageError) as caught:
        images.to_rekognition_jpeg(data, fmt)
    return str(caught.value)


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` by ``height`` (a decompression bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_reasons() -> None:
    assert _reason(b"") == "empty object (0 bytes)"
    assert _reason(b"%PDF-1.7\n...") == "not an image: a PDF document (starts with '%PDF-1.7')"
    assert _reason(b"hello world").startswith("not an image (starts with 'hello wo')")
    assert _reason(b"\x00\x01\x02\x03") == "not an image (starts with bytes 00 01 02 03)"
    jpeg = make_image("jpeg", (400, 300))
    assert _reason(jpeg[: len(jpeg) // 2]).startswith("truncated JPEG")
    assert _reason(png_header_claiming(30000, 30000), "png") == (
        f"image too large: 30000{BY}30000 pixels (limit {images.MAX_IMAGE_PIXELS:,} pixels)"
    )
    assert _reason(png_header_claiming(12000, 9000), "png").startswith(
        f"image too large: 12000{BY}9000 pixels"
    )
    assert _reason(make_image("png", (50, 400)), "png").startswith(f"image too small: 50{BY}400")
    assert _reason(b"\x00\x00\x00\x18ftypqt  " + b"\x00" * 20).startswith(
        "not an image: an unsupported ISO media file (brand 'qt  ')"
    )


def test_explicit_pixel_limit() -> None:
    data = make_image("png", (300, 300))
    with pytest.raises(InvalidImageError, match=rf"300{BY}300 pixels \(limit 50,000 pixels\)"):
        images.to_rekognition_jpeg(data, "png", max_pixels=50_000)


def test_needs_conversion() -> None:
    limit = images.REKOGNITION_MAX_S3_OBJECT_BYTES
    assert not images.needs_conversion("jpeg", 1000)
    assert not images.needs_conversion("png", limit)
    assert images.needs_conversion("jpeg", limit + 1)
    assert images.needs_conversion("png", 50 * 1024 * 1024)
    for fmt in ("webp", "gif", "tiff", "bmp", "heif", "avif"):
        assert images.needs_conversion(fmt, 10)


def test_sniff_tells_avif_from_heic() -> None:
    assert images.sniff(make_image("heif", (100, 100))[:32]) == "heif"
    assert images.sniff(make_image("avif", (100, 100))[:32]) == "avif"
    assert images.sniff(b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avif") == "avif"
    assert images.sniff(b"\x00\x00\x00\x18ftypisom") is None


# ----------------------------------------------------------------------------- memory budget

# Small files, huge pictures (issue 10, defect 8): Pillow mode, size, save options, and the reason
# expected (None: a valid JPEG is expected).
HOSTILE: dict[str, tuple[str, tuple[int, int], dict[str, Any], str | None]] = {
    "tiff16": (
        "I;16",
        (10_000, 10_000),
        {"format": "TIFF", "compression": "tiff_adobe_deflate"},
        f"image too large: 10000{BY}10000 pixels (limit 25,000,000 pixels)",
    ),
    "png-rgba": (
        "RGBA",
        (5001, 5000),
        {"format": "PNG", "compress_level": 1},
        f"image too large: 5001{BY}5000 pixels (limit 25,000,000 pixels)",
    ),
    "jpeg-progressive": (
        "RGB",
        (5001, 5000),
        {"format": "JPEG", "progressive": True},
        f"image too large: 5001{BY}5000 pixels (limit 25,000,000 pixels for a progressive JPEG)",
    ),
    "webp": (
        "RGBA",
        (4001, 4000),
        {"format": "WEBP", "method": 0},
        f"image too large: 4001{BY}4000 pixels (limit 16,000,000 pixels for WEBP)",
    ),
    "gif": ("P", (5001, 5000), {"format": "GIF"}, "image too large: 5001"),
    # libjpeg decodes a baseline JPEG at 1/4 scale here: 108 MP cost what 6.75 MP do.
    "jpeg-baseline-108mp": ("RGB", (12_000, 9000), {"format": "JPEG"}, None),
    "gif-under-the-cap": ("P", (4100, 3000), {"format": "GIF"}, None),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_pictures_get_a_reason_or_a_jpeg(name: str) -> None:
    mode, size, save, reason = HOSTILE[name]
    out = io.BytesIO()
    Image.new(mode, size).save(out, **save)
    data = out.getvalue()
    assert len(data) < 2_000_000  # small files
    if reason is None:
        result = assert_valid_jpeg(images.to_rekognition_jpeg(data, "jpeg"))
        assert max(result.size) == images.MAX_SIDE_PX
    else:
        assert _reason(data).startswith(reason)


def test_16_bit_greyscale_is_scaled_down_then_stretched_to_8_bits() -> None:
    gradient = Image.linear_gradient("L").resize((8200, 1000)).convert("I")
    deep = gradient.point(lambda value: 1000 + value * 8).convert("I;16")
    out = io.BytesIO()
    deep.save(out, format="TIFF", compression="tiff_adobe_deflate")
    result = assert_valid_jpeg(images.to_rekognition_jpeg(out.getvalue(), "tiff"))
    assert result.size == (images.MAX_SIDE_PX, 250)
    low, high = cast("tuple[int, int]", result.convert("L").getextrema())
    assert low < 10
    assert high > 245


def test_at_most_decode_slots_conversions_decode_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    active = most = 0
    lock = threading.Lock()
    normalised = images._normalised

    def watched(*args: Any) -> Image.Image:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        try:
            time.sleep(0.05)  # long enough for the other threads to arrive, were they let in
            return normalised(*args)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(images, "_normalised", watched)
    data = make_image("webp", (200, 150))
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: images.to_rekognition_jpeg(data, "webp"), range(8)))
    for result in results:
        assert_valid_jpeg(result)
    assert 1 <= most <= images.DECODE_SLOTS < 8
