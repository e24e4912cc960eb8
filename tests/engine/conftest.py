"""Fixtures for the engine tests: one embedded AWS for the whole session, boto3 clients on it,
and a cache of analysed corpus photos (each photo is analysed once per session)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dlib", reason="the local face engine needs the 'local' extra (dlib-bin)")
pytest.importorskip("moto", reason="the embedded AWS needs the 'local' extra (moto[server])")

from PIL import Image

from tests.engine.shapes import check_answers
from worker.local.engine.models import Face, FaceModels
from worker.local.engine.server import EmbeddedAWS

REGION = "us-east-1"


@pytest.fixture(scope="session")
def embedded() -> Iterator[EmbeddedAWS]:
    with EmbeddedAWS(region=REGION) as aws:
        yield aws


@pytest.fixture(scope="session")
def rekognition(embedded: EmbeddedAWS) -> Any:
    """A boto3 client whose every answer is checked against botocore's service model."""
    return check_answers(embedded.client("rekognition"))


@pytest.fixture(scope="session")
def s3(embedded: EmbeddedAWS) -> Any:
    return embedded.client("s3")


@pytest.fixture(scope="session")
def models(embedded: EmbeddedAWS) -> FaceModels:
    models = embedded.backend.models
    assert isinstance(models, FaceModels), "the engine's default decoder is dlib's"
    return models


class FaceCache:
    """Analysed corpus photos: every face of a photo, embedded, computed once."""

    def __init__(self, models: FaceModels) -> None:
        self.models = models
        self._faces: dict[Path, tuple[Face, ...]] = {}

    def faces(self, path: Path) -> tuple[Face, ...]:
        if path not in self._faces:
            analysis = self.models.analyse(path.read_bytes())
            self.models.embed(analysis.faces)
            self._faces[path] = analysis.faces
        return self._faces[path]

    def largest(self, path: Path) -> Face:
        faces = self.faces(path)
        assert faces, f"no face found in {path}"
        return faces[0]


@pytest.fixture(scope="session")
def face_cache(models: FaceModels) -> FaceCache:
    return FaceCache(models)


def jpeg(image: Image.Image, **save: Any) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=90, **save)
    return out.getvalue()


def blank_png(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (120, 160, 200)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="session")
def samples() -> dict[str, bytes]:
    """Face photos that ship in pip packages (public domain), and variants derived from them:
    ``astronaut`` (PNG, scikit-image; cut above the mission patch on her suit, which HOG takes
    for a face), ``astronaut_small`` (cropped and scaled down, JPEG),
    ``hopper`` (JPEG, matplotlib), ``pair`` (both side by side), ``blank`` (no face)."""
    data = pytest.importorskip("skimage.data", reason="sample faces need the 'demo' extra")
    cbook = pytest.importorskip("matplotlib.cbook", reason="sample faces need the 'demo' extra")
    astronaut = Image.fromarray(data.astronaut()).crop((0, 0, 512, 320))
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        hopper = image.convert("RGB")
    out = io.BytesIO()
    astronaut.save(out, "PNG")
    small = astronaut.crop((100, 0, 400, 300)).resize((220, 220))
    pair = Image.new("RGB", (astronaut.width + hopper.width, max(astronaut.height, hopper.height)))
    pair.paste(astronaut, (0, 0))
    pair.paste(hopper, (astronaut.width, 0))
    return {
        "astronaut": out.getvalue(),
        "astronaut_small": jpeg(small),
        "hopper": jpeg(hopper),
        "pair": jpeg(pair),
        "blank": blank_png(),
    }
