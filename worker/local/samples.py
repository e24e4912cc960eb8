"""The demo's sample references and uploads, derived from public-domain photos that ship inside
pip packages, so nothing is downloaded:

- scikit-image's ``data/astronaut.png``: Eileen Collins, NASA portrait (public domain);
- matplotlib's ``mpl-data/sample_data/grace_hopper.jpg``: Grace Hopper, US Navy portrait (public
  domain);
- scikit-image's ``data/lfw_subset.npy``: 25 x 25 px greyscale faces from Labeled Faces in the Wild
  (a research data set of news photos, shipped with scikit-image under its licence): one of them,
  enlarged, is the stranger — a face of nobody in the references.

The uploads are variants made with Pillow (a crop, a smaller copy, a tilted copy, both people side
by side, a part of a photo with no face), the stranger and a text file with an image's name. Each
sample says what the worker should answer for it (:attr:`Sample.expected_status`,
:attr:`Sample.expected_labels`).
"""

from __future__ import annotations

import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

# Where the two photos live inside their packages.
ASTRONAUT = ("skimage", "data/astronaut.png")
GRACE_HOPPER = ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg")
LFW_FACES = ("skimage", "data/lfw_subset.npy")
# The stranger: face 49 of the 100 faces in lfw_subset.npy, enlarged 8 times (200 x 200 px). The
# local engine finds one face in it at every size from 100 to 400 px, 2.5-2.7 % similar to either
# reference (the threshold is 80): a steady no_match.
STRANGER_INDEX = 49
STRANGER_SCALE = 8
# The labels the references give (CONTRACT.md: file stem, or the folder under the prefix).
EILEEN = "eileen_collins"
GRACE = "grace_hopper"
# JPEG quality of the derived uploads.
JPEG_QUALITY = 90
# Boxes (left, top, right, bottom) in the 512 x 512 astronaut photo.
ASTRONAUT_FACE_CROP = (110, 0, 350, 260)
ASTRONAUT_NO_FACE_CROP = (340, 0, 512, 300)  # the shuttle model: no face
# The smaller copy of Grace Hopper's 512 x 600 portrait, as a fraction of each side.
RESCALE_FACTOR = 0.45
# Degrees of the tilted copy (counter-clockwise); the frontal HOG detector handles small tilts.
# (Grace Hopper's portrait. The astronaut photo's mission patch, tilted or shrunk, used to pass
# for a second face; the engine now asks its CNN about weak hits: worker/local/engine/detection.py.)
TILT_DEGREES = 10.0
NOT_AN_IMAGE = (
    b"This file is named like a photo but holds plain text.\n"
    b"The worker recognises images by their content, not their name, and answers invalid_image.\n"
)


class SamplesUnavailable(Exception):
    """A package that holds a sample photo is not installed (the ``demo`` extra)."""


@dataclass(frozen=True)
class Sample:
    """One object the demo puts in the bucket, and what the worker should say about it."""

    key: str
    body: bytes
    content_type: str
    description: str
    expected_status: str | None = None  # None for references
    expected_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class SampleSet:
    references: tuple[Sample, ...]
    uploads: tuple[Sample, ...]


def package_file(package: str, path: str) -> bytes:
    """The bytes of ``path`` inside the installed ``package``, found without importing it
    (importing matplotlib alone takes most of a second) and never downloaded."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SamplesUnavailable(f"the package {package!r} is not installed")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / path
        if candidate.is_file():
            return candidate.read_bytes()
    raise SamplesUnavailable(f"the installed {package!r} has no {path}")


def open_image(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def crop(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    return image.crop(box)


def rescale(image: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS)


def tilt(image: Image.Image, degrees: float) -> Image.Image:
    """Rotate about the centre, growing the canvas so nothing is cut; corners filled white."""
    return image.rotate(
        degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255)
    )


def side_by_side(left: Image.Image, right: Image.Image) -> Image.Image:
    """Both photos at the height of the shorter one, next to each other."""
    height = min(left.height, right.height)
    parts = [
        part if part.height == height else rescale(part, height / part.height)
        for part in (left, right)
    ]
    canvas = Image.new("RGB", (sum(part.width for part in parts), height), (255, 255, 255))
    x = 0
    for part in parts:
        canvas.paste(part, (x, 0))
        x += part.width
    return canvas


def stranger() -> Image.Image:
    """The stranger's face (see :data:`STRANGER_INDEX`), RGB, enlarged."""
    import numpy as np  # noqa: PLC0415 - a dependency of scikit-image, needed for this one file

    faces = np.load(io.BytesIO(package_file(*LFW_FACES)), allow_pickle=False)
    face = faces[STRANGER_INDEX]
    pixels = (face * 255).round().clip(0, 255) if face.dtype.kind == "f" else face
    small = Image.fromarray(pixels.astype(np.uint8))  # 2-D uint8: greyscale ("L")
    return rescale(small, STRANGER_SCALE).convert("RGB")


def load_samples(
    reference_prefix: str = "references/", upload_prefix: str = "uploads/"
) -> SampleSet:
    """Read the two photos from their packages and derive the uploads (about 0.1 s)."""
    astronaut_png = package_file(*ASTRONAUT)
    hopper_jpg = package_file(*GRACE_HOPPER)
    astronaut = open_image(astronaut_png)
    hopper = open_image(hopper_jpg)

    references = (
        Sample(
            f"{reference_prefix}{EILEEN}.png",
            astronaut_png,
            "image/png",
            "reference: scikit-image's astronaut.png (label from the file name)",
        ),
        Sample(
            f"{reference_prefix}{GRACE}/1.jpg",
            hopper_jpg,
            "image/jpeg",
            "reference: matplotlib's grace_hopper.jpg (label from the folder)",
        ),
    )

    def upload(
        name: str,
        body: bytes,
        description: str,
        status: str,
        *labels: str,
        kind: str = "image/jpeg",
    ) -> Sample:
        return Sample(f"{upload_prefix}{name}", body, kind, description, status, labels)

    uploads = (
        upload(
            "astronaut-crop.jpg",
            jpeg(crop(astronaut, ASTRONAUT_FACE_CROP)),
            "a crop around Eileen Collins' head",
            "matched",
            EILEEN,
        ),
        upload(
            "grace-hopper-small.jpg",
            jpeg(rescale(hopper, RESCALE_FACTOR)),
            f"Grace Hopper's portrait at {RESCALE_FACTOR:.0%} of its size",
            "matched",
            GRACE,
        ),
        upload(
            "grace-hopper-tilted.jpg",
            jpeg(tilt(hopper, TILT_DEGREES)),
            f"Grace Hopper's portrait turned {TILT_DEGREES:g} degrees",
            "matched",
            GRACE,
        ),
        upload(
            "both-side-by-side.jpg",
            jpeg(side_by_side(astronaut, hopper)),
            "both portraits in one picture: two faces, two matches",
            "matched",
            EILEEN,
            GRACE,
        ),
        upload(
            "space-shuttle.jpg",
            jpeg(crop(astronaut, ASTRONAUT_NO_FACE_CROP)),
            "the shuttle model from the astronaut photo: no face",
            "no_face",
        ),
        upload(
            "stranger.jpg",
            jpeg(stranger()),
            "a face from scikit-image's lfw_subset, enlarged: somebody not in the references",
            "no_match",
        ),
        upload(
            "not-an-image.jpg",
            NOT_AN_IMAGE,
            "plain text under an image's name",
            "invalid_image",
            kind="text/plain",
        ),
    )
    return SampleSet(references=references, uploads=uploads)


def write_samples(folder: Path) -> list[Path]:
    """Write the sample photos into ``folder``: ``references/…`` and ``uploads/…`` as the demo
    uses them, for trying the worker by hand (README's walk-through)."""
    samples = load_samples()
    written = []
    for sample in (*samples.references, *samples.uploads):
        path = folder / sample.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sample.body)
        written.append(path)
    return written


if __name__ == "__main__":  # python -m worker.local.samples DIR
    import sys

    for path in write_samples(Path(sys.argv[1] if len(sys.argv) > 1 else "samples")):
        print(path)
