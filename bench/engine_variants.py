"""The local engine's detection on altered photos: orientation, size, degradations, false faces.

Held-out protocol (issue 14, item 9): for every person of ../shared/faces with ordinary photos
(not the 150 px chips of ``john_*``), the first photo is the reference and each other photo is
altered (grey, darkened, blurred, JPEG quality 8, mirrored, turned, scaled) and compared with it
like CompareFaces (the best face of the altered photo against the reference's largest): matched
at similarity 80. Then: faces found on photos without faces and their variants (false faces),
faces found in the group photos, the smallest faces Rekognition documents (40 px in a 1920 x 1080
frame: faces pasted at 40-80 px), and the time per image, median, of face and no-face images.
``--before`` also runs the detection as it was before the fallbacks and the CNN confirmation (one
upright HOG pass, every hit kept). Prints figures; asserts nothing. Usage::

    .venv/bin/python bench/engine_variants.py [FACES_DIR] [--before] [--per-person N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from PIL import Image, ImageEnhance, ImageFilter, ImageOps
from skimage import data as skdata

from worker.local.engine import detection
from worker.local.engine.models import Face, FaceModels, distance, similarity

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT.parent / "shared" / "faces"
THRESHOLD = 80.0
JPEG_QUALITY = 90
# Rekognition's smallest image: "The minimum image dimensions is 80 pixels for both height and
# width" (limits.html); smaller variants are not sent.
MIN_IMAGE_PX = 80
# Faces pasted into a 1920 x 1080 frame: box widths, px (Rekognition's minimum is 40).
SMALL_FACES_PX = (40, 48, 56, 64, 80)
FRAME = (1920, 1080)
# Photos without faces that ship with scikit-image (the demo extra), besides ../shared/faces.
SKIMAGE_NO_FACE = ("chelsea", "coffee", "rocket", "coins", "horse", "hubble_deep_field")

Variant = Callable[[Image.Image], Image.Image]


def jpeg(image: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)  # no EXIF: orientation is lost
    return out.getvalue()


def scaled(factor: float) -> Variant:
    return lambda im: im.resize(
        (max(1, round(im.width * factor)), max(1, round(im.height * factor))),
        Image.Resampling.LANCZOS,
    )


def rotated(degrees: float) -> Variant:
    return lambda im: im.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True)


def turned(method: Image.Transpose) -> Variant:
    return lambda im: im.transpose(method)


def then(first: Variant, second: Variant) -> Variant:
    return lambda im: second(first(im))


def blurred(im: Image.Image) -> Image.Image:
    return im.filter(ImageFilter.GaussianBlur(max(im.size) / 400))


# The altered photos, encoded as JPEG (quality 90 unless said) without EXIF.
VARIANTS: dict[str, tuple[Variant, int]] = {
    "original": (lambda im: im, JPEG_QUALITY),
    "grayscale": (lambda im: im.convert("L"), JPEG_QUALITY),
    "dark 30 %": (lambda im: ImageEnhance.Brightness(im).enhance(0.3), JPEG_QUALITY),
    "blur (radius 1/400 of the side)": (blurred, JPEG_QUALITY),
    "JPEG quality 8": (lambda im: im, 8),
    "mirrored": (ImageOps.mirror, JPEG_QUALITY),
    "rotated 25°": (rotated(25), JPEG_QUALITY),
    "turned 90° (no EXIF)": (turned(Image.Transpose.ROTATE_90), JPEG_QUALITY),
    "turned 180° (no EXIF)": (turned(Image.Transpose.ROTATE_180), JPEG_QUALITY),
    "turned 270° (no EXIF)": (turned(Image.Transpose.ROTATE_270), JPEG_QUALITY),
    "scaled 25 %": (scaled(0.25), JPEG_QUALITY),
    "scaled 12 %": (scaled(0.12), JPEG_QUALITY),
}
# What scikit-image's astronaut goes through when false faces are counted (HOG also scores her
# mission patch, name tag and glove, depending on tilt and size).
ASTRONAUT_VARIANTS: dict[str, Variant] = {
    "original": lambda im: im,
    "grayscale": lambda im: im.convert("L"),
    **{f"tilted {d}°": rotated(d) for d in (-25, -15, -10, -5, 5, 10, 15, 25)},
    **{f"scaled {round(f * 100)} %": scaled(f) for f in (0.5, 0.35, 0.25, 0.12)},
    **{
        f"tilted {d}°, scaled {round(f * 100)} %": then(rotated(d), scaled(f))
        for d in (-15, -10, 10, 15)
        for f in (0.5, 0.25)
    },
    "turned 90°": turned(Image.Transpose.ROTATE_90),
    "turned 180°": turned(Image.Transpose.ROTATE_180),
    "turned 270°": turned(Image.Transpose.ROTATE_270),
}
# The photos without any face go through fewer (each costs every fallback pass).
NO_FACE_VARIANTS = {
    name: ASTRONAUT_VARIANTS[name]
    for name in (
        "original",
        "grayscale",
        "tilted -15°",
        "tilted 10°",
        "scaled 50 %",
        "scaled 25 %",
        "tilted -10°, scaled 50 %",
        "tilted 15°, scaled 25 %",
        "turned 90°",
    )
}


@contextlib.contextmanager
def detection_before() -> Iterator[None]:
    """The detection before issue 14 (items 8, 9): one upright pass, every HOG hit kept."""
    passes, confirm = detection.passes, detection.CONFIRM_BELOW_SCORE
    detection.passes = lambda longest, side: [detection.Pass(side)]  # type: ignore[assignment]
    detection.CONFIRM_BELOW_SCORE = float("-inf")
    try:
        yield
    finally:
        detection.passes, detection.CONFIRM_BELOW_SCORE = passes, confirm


def skimage_photo(name: str) -> Image.Image:
    """A sample photo of scikit-image (the demo extra), e.g. ``astronaut``."""
    return Image.fromarray(getattr(skdata, name)()).convert("RGB")


def load(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def people(faces_dir: Path, per_person: int | None) -> dict[str, list[Path]]:
    """Ordinary photos (JPEG or PNG, not 150 px chips) of everyone with at least two."""
    found = {}
    for folder in sorted(d for d in faces_dir.iterdir() if d.is_dir() and d.name[0] != "_"):
        photos = []
        for path in sorted(folder.iterdir()):
            with Image.open(path) as image:
                if image.format in {"JPEG", "PNG"} and max(image.size) > 150:
                    photos.append(path)
        if len(photos) >= 2:
            found[folder.name] = photos[: None if per_person is None else per_person + 1]
    return found


class Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    def analyse(self, models: FaceModels, data: bytes, kind: str) -> tuple[Face, ...]:
        started = time.perf_counter()
        faces = models.analyse(data).faces
        self.seconds.setdefault(kind, []).append(time.perf_counter() - started)
        return faces


def best_match(models: FaceModels, faces: tuple[Face, ...], reference: Face) -> float:
    models.embed(faces)
    return max((similarity(distance(face, reference)) for face in faces), default=0.0)


def held_out(
    models: FaceModels, timer: Timer, photos: dict[str, list[Path]], refs: dict[str, Face]
) -> None:
    print(f"held-out photos against their person's reference, matched at {THRESHOLD:.0f}:")
    for name, (variant, quality) in VARIANTS.items():
        found = matched = total = 0
        for person, paths in photos.items():
            for path in paths[1:]:
                image = variant(load(path))
                if min(image.size) < MIN_IMAGE_PX:
                    continue
                data = path.read_bytes() if name == "original" else jpeg(image, quality)
                kind = "turned, with a face" if "turned" in name else "upright, with a face"
                faces = timer.analyse(models, data, kind)
                total += 1
                found += bool(faces)
                matched += best_match(models, faces, refs[person]) >= THRESHOLD
        print(
            f"  {name:32} matched {matched:>3}/{total} ({100 * matched / max(total, 1):5.1f} %)"
            f", a face found in {found}"
        )


def no_face_images(faces_dir: Path) -> dict[str, Image.Image]:
    images = {p.name: load(p) for p in sorted((faces_dir / "_noface").iterdir())}
    for name in SKIMAGE_NO_FACE:
        images[f"skimage {name}"] = skimage_photo(name)
    return images


def false_faces(models: FaceModels, timer: Timer, faces_dir: Path) -> None:
    images = no_face_images(faces_dir)
    print(
        f"\nfalse faces: {len(images)} photos without a face x {len(NO_FACE_VARIANTS)} variants"
        " (tilted, scaled, grey, turned)"
    )
    total = 0
    for label, image in images.items():
        variants = [v(image) for v in NO_FACE_VARIANTS.values()]
        counts = [
            len(timer.analyse(models, jpeg(v), "no face"))
            for v in variants
            if min(v.size) >= MIN_IMAGE_PX
        ]
        total += sum(counts)
        print(
            f"  {label:28} {sum(counts)} false faces in {sum(c > 0 for c in counts)}"
            f" of {len(counts)} variants"
        )
    print(f"  total: {total}")
    astronaut = skimage_photo("astronaut")
    her = max(models.analyse(jpeg(astronaut)).faces, key=lambda face: face.confidence)
    models.embed([her])
    extra = missed = tried = 0
    for variant in ASTRONAUT_VARIANTS.values():
        image = variant(astronaut)
        if min(image.size) < MIN_IMAGE_PX:
            continue
        faces = models.analyse(jpeg(image)).faces
        models.embed(faces)
        real = [face for face in faces if similarity(distance(face, her)) >= THRESHOLD]
        tried += 1
        extra += len(faces) - len(real)
        missed += not real
    print(
        "  skimage astronaut (her face is real; the mission patch, name tag and glove are not):"
        f" {extra} false faces in {tried} variants; her face missed in {missed}"
    )


def group_photos(models: FaceModels, timer: Timer, faces_dir: Path) -> None:
    print("\nfaces found in the group photos (and _scales, _partial):")
    for folder in ("_multi", "_scales", "_partial"):
        counts = {
            p.name: len(timer.analyse(models, p.read_bytes(), f"{folder} photos"))
            for p in sorted((faces_dir / folder).iterdir())
        }
        print(f"  {folder}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def small_faces(
    models: FaceModels,
    timer: Timer,
    faces_dir: Path,
    photos: dict[str, list[Path]],
    refs: dict[str, Face],
) -> None:
    background = load(sorted((faces_dir / "_noface").iterdir())[0])
    frame = background.resize(FRAME, Image.Resampling.BILINEAR)
    print(
        f"\none face pasted into a {FRAME[0]} x {FRAME[1]} frame (a no-face photo), by box width:"
    )
    for size in SMALL_FACES_PX:
        found = matched = 0
        for person, paths in photos.items():
            image = load(paths[0])
            box = refs[person].box
            width = box.width * image.width
            cx, cy = (
                (box.left + box.width / 2) * image.width,
                (box.top + box.height / 2) * image.height,
            )
            crop = image.crop(
                (round(cx - width), round(cy - width), round(cx + width), round(cy + width))
            )
            crop = scaled(size / width)(crop)
            canvas = frame.copy()
            canvas.paste(crop, (FRAME[0] // 3, FRAME[1] // 2))
            faces = timer.analyse(models, jpeg(canvas), "1920 x 1080, one small face")
            found += bool(faces)
            matched += best_match(models, faces, refs[person]) >= THRESHOLD
        print(f"  {size:>3} px: found {found}/{len(photos)}, matched {matched}/{len(photos)}")


def run(models: FaceModels, faces_dir: Path, per_person: int | None) -> None:
    timer = Timer()
    photos = people(faces_dir, per_person)
    refs = {}
    for person, paths in photos.items():
        faces = models.analyse(paths[0].read_bytes()).faces
        models.embed(faces[:1])
        refs[person] = faces[0]
    probes = sum(len(p) - 1 for p in photos.values())
    print(f"{len(photos)} people, {probes} held-out photos")
    held_out(models, timer, photos, refs)
    false_faces(models, timer, faces_dir)
    group_photos(models, timer, faces_dir)
    small_faces(models, timer, faces_dir, photos, refs)
    print("\ntime per image (detection: decode + every pass; median, max):")
    for kind, seconds in timer.seconds.items():
        print(
            f"  {kind:28} {statistics.median(seconds):.3f} s, {max(seconds):.3f} s"
            f"  ({len(seconds)} images)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("faces_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--before", action="store_true", help="also run the old detection")
    parser.add_argument("--per-person", type=int, help="at most N held-out photos per person")
    args = parser.parse_args()
    if not args.faces_dir.is_dir():
        print(f"no face corpus at {args.faces_dir}")
        return 2
    models = FaceModels()
    started = time.perf_counter()
    if args.before:
        print("== before (one upright HOG pass, every hit kept) ==")
        with detection_before():
            run(models, args.faces_dir, args.per_person)
        print(f"took {time.perf_counter() - started:.0f} s\n\n== now ==")
        started = time.perf_counter()
    run(models, args.faces_dir, args.per_person)
    print(f"took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
