"""Peak memory and time of the conversion path on images that are small files but huge pictures.

Builds the files in a temporary directory, then runs ``to_rekognition_jpeg`` (``worker/images.py``,
the code the worker runs for every upload that is not a JPEG/PNG under 15 MB) in a fresh
subprocess per run, which first creates the worker's four boto3 clients so that its idle RSS is
about a worker's. Prints, and asserts nothing:

* solo: each file alone — peak RSS of the process (VmHWM), seconds, the result;
* mixed: ``THREADS`` (the worker's default ``CONCURRENCY=8``) conversions at once, four hostile
  files in flight together with ordinary photos — peak RSS, wall time, each file's seconds
  (including the wait for its turn to decode) and result.

Two sets of hostile files: ``over`` (the issue's: 10,000 x 10,000 px, among them a 16-bit TIFF of
300 KB) and ``at-cap`` (the largest squares the current caps admit, ``MAX_IMAGE_PIXELS`` or the
format's ``FORMAT_MAX_PIXELS``: the worst that is decoded). Usage::

    .venv/bin/python -m bench.decode_memory                   # about 1 minute
    .venv/bin/python -m bench.decode_memory --images OLD.py   # another worker/images.py, e.g.
        git show HEAD:worker/images.py > /tmp/old_images.py (the files stay the same)
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
THREADS = 8
OVER_SIDE = 10_000
PHOTO = (4032, 3024)  # a 12 MP phone photo
# What the measured process keeps alive besides the module under test (the worker's AWS clients).
_HELD: list[object] = []


# ----------------------------------------------------------------------------- building the files


def _grey(size: tuple[int, int]) -> Image.Image:
    return Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)


def _rgb(size: tuple[int, int]) -> Image.Image:
    grey = _grey(size)
    return Image.merge("RGB", (grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT), grey))


def _tiff16(size: tuple[int, int]) -> tuple[Image.Image, dict[str, Any]]:
    deep = _grey(size).convert("I").point(lambda value: value * 257).convert("I;16")
    return deep, {"format": "TIFF", "compression": "tiff_adobe_deflate"}


def _png_rgba(size: tuple[int, int]) -> tuple[Image.Image, dict[str, Any]]:
    rgba = _rgb(size).convert("RGBA")
    rgba.putalpha(_grey(size).transpose(Image.Transpose.ROTATE_90).resize(size))
    return rgba, {"format": "PNG", "compress_level": 1}


def _jpeg_progressive(size: tuple[int, int]) -> tuple[Image.Image, dict[str, Any]]:
    return _rgb(size), {"format": "JPEG", "quality": 80, "progressive": True}


def _webp(size: tuple[int, int]) -> tuple[Image.Image, dict[str, Any]]:
    return _rgb(size), {"format": "WEBP", "quality": 60, "method": 0}


def _webp_rgba(size: tuple[int, int]) -> tuple[Image.Image, dict[str, Any]]:
    return _png_rgba(size)[0], {"format": "WEBP", "quality": 60, "method": 0}


def _gif(size: tuple[int, int]) -> tuple[Image.Image, dict[str, Any]]:
    return _grey(size).convert("P"), {"format": "GIF"}


def _heic(size: tuple[int, int]) -> tuple[Image.Image, dict[str, Any]]:
    import pillow_heif  # noqa: PLC0415 - only to write the sample

    pillow_heif.register_heif_opener()
    return _rgb(size), {"format": "HEIF", "quality": 70}


def _tiff_rgb(size: tuple[int, int]) -> tuple[Image.Image, dict[str, Any]]:
    return _rgb(size), {"format": "TIFF", "compression": "tiff_lzw"}


Builder = Callable[[tuple[int, int]], tuple[Image.Image, dict[str, Any]]]
# The hostile files, by name: the format they sniff as, and how to build one of a given size.
HOSTILE: dict[str, tuple[str, Builder]] = {
    "tiff16": ("tiff", _tiff16),
    "png-rgba": ("png", _png_rgba),
    "jpeg-progressive": ("jpeg", _jpeg_progressive),
    "webp-rgba": ("webp", _webp_rgba),
}
ORDINARY: list[tuple[str, Builder, tuple[int, int]]] = [
    ("heic-12mp", _heic, PHOTO),
    ("heic-24mp", _heic, (5712, 4284)),  # recent iPhones' default
    ("webp-12mp", _webp, PHOTO),
    ("tiff-rgb-12mp", _tiff_rgb, PHOTO),
    ("gif-3mp", _gif, (2000, 1500)),
]


def build(directory: Path, caps: Callable[[str], int]) -> dict[str, list[Path]]:
    """The files of each set, written once: ``over``, ``at-cap`` and ``ordinary``."""
    over = (OVER_SIDE, OVER_SIDE)
    wanted: dict[str, list[tuple[str, Builder, tuple[int, int]]]] = {
        "over": [(f"{n}-{OVER_SIDE}px", b, over) for n, (_, b) in HOSTILE.items()],
        "at-cap": [
            (f"{n}-{math.isqrt(caps(fmt))}px", b, (math.isqrt(caps(fmt)),) * 2)
            for n, (fmt, b) in HOSTILE.items()
        ],
        "ordinary": [(f"{n}-{i}", b, size) for i in (1, 2) for n, b, size in ORDINARY],
    }
    wanted["over"].append((f"gif-{OVER_SIDE}px", _gif, (OVER_SIDE,) * 2))
    sets: dict[str, list[Path]] = {}
    for name, files in wanted.items():
        sets[name] = []
        for stem, builder, size in files:
            path = directory / stem
            if not path.exists():
                image, save = builder(size)
                image.save(path, **save)
                image.close()
            sets[name].append(path)
    return sets


# ----------------------------------------------------------------------------- the measured child


def _peak_mb() -> float:
    """This process's peak RSS: VmHWM, which exec resets (``ru_maxrss`` keeps the forking parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load(images_path: str | None) -> ModuleType:
    """The images module under test, after loading what a worker holds (for an honest idle RSS)."""
    import boto3  # noqa: PLC0415

    session = boto3.session.Session(region_name="eu-west-1")
    _HELD.extend(session.client(name) for name in ("s3", "sqs", "sns", "rekognition"))
    if images_path is None:
        from worker import images  # noqa: PLC0415

        return images
    spec = importlib.util.spec_from_file_location("images_under_test", images_path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _convert(images: ModuleType, path: str) -> dict[str, Any]:
    data = Path(path).read_bytes()
    started = time.perf_counter()
    try:
        jpeg = images.to_rekognition_jpeg(data, images.sniff(data[:32]) or "jpeg")
    except images.InvalidImageError as exc:
        result = f"invalid_image: {exc}"
    else:
        with Image.open(io.BytesIO(jpeg)) as out:
            result = f"JPEG {out.size[0]}x{out.size[1]}, {len(jpeg) / 1e6:.2f} MB"
    return {"file": Path(path).name, "seconds": time.perf_counter() - started, "result": result}


def child(images_path: str | None, paths: list[str]) -> None:
    images = _load(images_path)
    idle = _peak_mb()
    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        files = list(pool.map(lambda path: _convert(images, path), paths))
    wall = time.perf_counter() - started
    print(json.dumps({"idle_mb": idle, "peak_mb": _peak_mb(), "wall": wall, "files": files}))


# ----------------------------------------------------------------------------- the driver


def run(images_path: str | None, paths: list[Path]) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.decode_memory", "--child"]
    if images_path:
        command += ["--images", images_path]
    out = subprocess.run(
        [*command, *map(str, paths)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise SystemExit(f"the measured process failed:\n{out.stderr}")
    return dict(json.loads(out.stdout.splitlines()[-1]))


def _file_line(entry: dict[str, Any]) -> str:
    return f"    {entry['file']:<28} {entry['seconds']:6.2f} s  {entry['result']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", help="path of a worker/images.py to measure instead")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keep", type=Path, help="build the files here and keep them")
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    if args.child:
        child(args.images, args.paths)
        return
    from worker import images  # noqa: PLC0415 - the caps the at-cap files are built for

    def caps(fmt: str) -> int:
        return int(images.FORMAT_MAX_PIXELS.get(fmt, images.MAX_IMAGE_PIXELS))

    with tempfile.TemporaryDirectory() as scratch:
        directory = args.keep or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        sets = build(directory, caps)
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        print(
            f"decode_memory {date.today()}: {os.cpu_count()} cores, {total:.0f} GiB; "
            f"images module {args.images or 'worker/images.py'}; {THREADS} threads"
        )
        for name in ("ordinary", "over", "at-cap"):
            print(f"\n[{name}] solo (one file per process)")
            for path in sets[name][: len(ORDINARY) if name == "ordinary" else None]:
                solo = run(args.images, [path])
                size = f"{path.stat().st_size / 1e6:.2f} MB"
                print(f"  peak {solo['peak_mb']:6.0f} MB  ({size} file)")
                print(_file_line(solo["files"][0]))
            if name == "ordinary":
                continue
            hostile = sets[name][: len(HOSTILE)]
            mixed = run(args.images, [*hostile, *sets["ordinary"]])
            print(
                f"[{name}] mixed: {len(hostile)} hostile + {len(sets['ordinary'])} ordinary, "
                f"{THREADS} threads: peak RSS {mixed['peak_mb']:.0f} MB "
                f"(idle {mixed['idle_mb']:.0f} MB), wall {mixed['wall']:.1f} s"
            )
            for entry in mixed["files"]:
                print(_file_line(entry))


if __name__ == "__main__":
    main()
