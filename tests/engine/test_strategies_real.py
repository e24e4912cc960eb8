"""Both matching strategies on real group photos, through the local engine behind boto3."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from worker.app import build_matching
from worker.aws.clients import make_clients
from worker.events import ObjectRef
from worker.matching import best_per_label
from worker.recognition.strategy import analyse
from worker.settings import load_settings
from worker.telemetry.metrics import Metrics

pytestmark = [pytest.mark.slow, pytest.mark.faces]

REFERENCES = {
    "obama": "obama",
    "biden": "biden",
    "kit_harington": "kit_harington",
    "rose_leslie": "rose_leslie",
}
GROUPS = {
    "two_people.jpg": {"obama", "biden"},
    "kit_with_rose.jpg": {"kit_harington", "rose_leslie"},
}


@pytest.mark.parametrize("strategy", ["compare", "collection"])
def test_every_known_face_in_a_group_photo_is_identified(
    strategy: str, embedded, faces_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in embedded.environment().items():
        monkeypatch.setenv(name, value)
    bucket = f"real-{uuid.uuid4().hex[:10]}"
    s3 = embedded.client("s3")
    s3.create_bucket(Bucket=bucket)
    for label, folder in REFERENCES.items():
        photo = sorted((faces_dir / folder).iterdir())[0]
        s3.put_object(
            Bucket=bucket, Key=f"references/{label}/{photo.name}", Body=photo.read_bytes()
        )
    for name in GROUPS:
        s3.put_object(
            Bucket=bucket, Key=f"uploads/{name}", Body=(faces_dir / "_multi" / name).read_bytes()
        )

    settings = load_settings(
        bucket_name=bucket, strategy=strategy, collection_id=f"c-{uuid.uuid4().hex[:8]}"
    )
    metrics = Metrics()
    matching = build_matching(settings, make_clients(), metrics)
    for name, expected in GROUPS.items():
        upload = matching.objects.head(ObjectRef(bucket=bucket, key=f"uploads/{name}"))
        image = matching.objects.image_for_rekognition(upload)
        result = analyse(matching.strategy, image, settings.similarity_threshold)
        matches = best_per_label(result.candidates, settings.similarity_threshold)
        assert {m.label for m in matches} == expected, name
        assert result.strategy == strategy
        # Each label is tied to a different face of the photo.
        assert len({(m.face.left, m.face.top) for m in matches}) == len(expected)
