"""The demo's samples: found inside installed packages, derived with Pillow, deterministic."""

from __future__ import annotations

import io

import pytest
from PIL import Image, UnidentifiedImageError

from worker.local import samples
from worker.local.samples import (
    EILEEN,
    GRACE,
    SamplesUnavailable,
    load_samples,
    package_file,
    rescale,
    side_by_side,
    tilt,
)


@pytest.fixture(scope="module")
def sample_set() -> samples.SampleSet:
    return load_samples()


def _image(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def test_references_are_the_shipped_photos_under_the_contracts_two_layouts(
    sample_set: samples.SampleSet,
) -> None:
    keys = [reference.key for reference in sample_set.references]
    assert keys == [f"references/{EILEEN}.png", f"references/{GRACE}/1.jpg"]
    assert sample_set.references[0].body == package_file(*samples.ASTRONAUT)
    assert sample_set.references[1].body == package_file(*samples.GRACE_HOPPER)
    assert [_image(r.body).format for r in sample_set.references] == ["PNG", "JPEG"]
    assert all(reference.expected_status is None for reference in sample_set.references)


def test_uploads_cover_every_status_the_demo_shows(sample_set: samples.SampleSet) -> None:
    keys = [upload.key for upload in sample_set.uploads]
    assert len(set(keys)) == len(keys)
    assert all(key.startswith("uploads/") for key in keys)
    expected = {
        upload.key: (upload.expected_status, upload.expected_labels)
        for upload in sample_set.uploads
    }
    assert expected["uploads/astronaut-crop.jpg"] == ("matched", (EILEEN,))
    assert expected["uploads/both-side-by-side.jpg"] == ("matched", (EILEEN, GRACE))
    assert expected["uploads/stranger.jpg"] == ("no_match", ())
    assert {status for status, _ in expected.values()} == {
        "matched",
        "no_match",
        "no_face",
        "invalid_image",
    }


def test_image_uploads_are_jpegs_of_the_derived_sizes(sample_set: samples.SampleSet) -> None:
    by_key = {upload.key: upload for upload in sample_set.uploads}
    sizes = {
        key: _image(upload.body).size
        for key, upload in by_key.items()
        if upload.expected_status != "invalid_image"
    }
    assert all(_image(by_key[key].body).format == "JPEG" for key in sizes)
    left, top, right, bottom = samples.ASTRONAUT_FACE_CROP
    assert sizes["uploads/astronaut-crop.jpg"] == (right - left, bottom - top)
    assert sizes["uploads/grace-hopper-small.jpg"] == (230, 270)  # 512 x 600 at 45 %
    tilted = sizes["uploads/grace-hopper-tilted.jpg"]
    assert tilted[0] > 512 and tilted[1] > 600  # the canvas grows, nothing is cut
    assert sizes["uploads/both-side-by-side.jpg"] == (512 + 437, 512)  # Hopper scaled to 512 high
    assert sizes["uploads/stranger.jpg"] == (200, 200)  # a 25 x 25 LFW face, 8 times larger


def test_the_file_that_is_not_an_image_is_not_one(sample_set: samples.SampleSet) -> None:
    (text,) = [u for u in sample_set.uploads if u.expected_status == "invalid_image"]
    assert text.key.endswith(".jpg")
    with pytest.raises(UnidentifiedImageError):
        _image(text.body)


def test_samples_are_deterministic() -> None:
    first, second = load_samples(), load_samples()
    assert [u.body for u in first.uploads] == [u.body for u in second.uploads]


def test_prefixes_are_configurable() -> None:
    custom = load_samples(reference_prefix="faces/", upload_prefix="in/")
    assert all(r.key.startswith("faces/") for r in custom.references)
    assert all(u.key.startswith("in/") for u in custom.uploads)


def test_missing_package_or_file_says_what_is_missing() -> None:
    with pytest.raises(SamplesUnavailable, match="no_such_package_xyz"):
        package_file("no_such_package_xyz", "data/x.png")
    with pytest.raises(SamplesUnavailable, match=r"skimage.*data/no-such-file\.png"):
        package_file("skimage", "data/no-such-file.png")


def test_transforms() -> None:
    red = Image.new("RGB", (100, 50), (255, 0, 0))
    blue = Image.new("RGB", (40, 100), (0, 0, 255))
    assert rescale(red, 0.5).size == (50, 25)
    assert tilt(red, 90).size == (50, 100)
    both = side_by_side(red, blue)
    assert both.size == (100 + 20, 50)
    assert both.getpixel((10, 10)) == (255, 0, 0)
    assert both.getpixel((110, 10)) == (0, 0, 255)
