"""Hostile uploads and messages through the whole pipeline (moto server, fake Rekognition,
`worker run` in a subprocess), asserted on what a user sees: the result record and its reason,
the SNS message, the DLQ listing with error_type, the queue drained, the worker still running.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import quote_plus

import pillow_heif
import pytest
from PIL import Image, ImageOps

from tests.integration.harness import Published, Stack, WorkerProcess, dlq_cli
from tests.support.rekognition import FakeRekognition
from tests.support.squares import ALICE, BOB, face_png, find_faces
from worker.results import result_key

pytestmark = pytest.mark.slow

StartWorker = Callable[..., WorkerProcess]
SUBJECT_PREFIX = {"invalid_image": "Rejected: ", "matched": "Match: ", "no_face": "No face: "}


# ------------------------------------------------------------------------------ hostile files


def picture(*faces: tuple[int, int, int], fmt: str, size: tuple[int, int] = (240, 160)) -> bytes:
    """The fake's face picture (coloured squares) saved as ``fmt``."""
    image = Image.open(io.BytesIO(face_png(*faces, size=size))).convert("RGB")
    out = io.BytesIO()
    if fmt == "HEIF":
        pillow_heif.register_heif_opener()
    image.save(out, format=fmt)
    return out.getvalue()


def animated_gif() -> bytes:
    first = Image.open(io.BytesIO(face_png(ALICE))).convert("RGB")
    later = Image.open(io.BytesIO(face_png(BOB))).convert("RGB")
    out = io.BytesIO()
    first.save(out, format="GIF", save_all=True, append_images=[later, later], duration=100)
    return out.getvalue()


def rotated_webp() -> tuple[bytes, dict[str, float]]:
    """A WebP whose EXIF says "rotate 90° clockwise", and where the face is once upright."""
    image = Image.open(io.BytesIO(face_png(ALICE, size=(300, 160)))).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    image.save(out, format="WEBP", exif=exif.tobytes(), quality=95)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(out.getvalue())))
    png = io.BytesIO()
    upright.save(png, format="PNG")
    return out.getvalue(), asdict(find_faces(png.getvalue())[0].box)


def bmp_claiming(width: int, height: int) -> bytes:
    """A 60-byte BMP whose header claims ``width`` by ``height`` 24-bit pixels."""
    info = (
        (40).to_bytes(4, "little")
        + width.to_bytes(4, "little", signed=True)
        + height.to_bytes(4, "little", signed=True)
        + (1).to_bytes(2, "little")
        + (24).to_bytes(2, "little")
        + bytes(24)
    )
    return (
        b"BM"
        + (14 + 40 + 6).to_bytes(4, "little")
        + bytes(4)
        + (54).to_bytes(4, "little")
        + info
        + bytes(6)
    )


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


LONG_KEY = "uploads/" + "long-" * 200 + ".png"  # 1,012 bytes: its result needs results/_long/


def hostile_uploads() -> dict[str, tuple[bytes, str, str | None]]:
    """key → (bytes, expected status, expected words in the reason)."""
    png_alice = face_png(ALICE)
    return {
        "uploads/empty.jpg": (b"", "invalid_image", "empty object (0 bytes)"),
        "uploads/report.jpg": (
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj",
            "invalid_image",
            "not an image",
        ),
        "uploads/notes.png": (b"hello, this is text", "invalid_image", "not an image"),
        "uploads/archive.jpg": (b"PK\x03\x04" + bytes(60), "invalid_image", "not an image"),
        "uploads/page.png": (b"<!DOCTYPE html><html></html>", "invalid_image", "not an image"),
        "uploads/truncated.jpg": (
            half(picture(ALICE, fmt="JPEG")),
            "invalid_image",
            "image format",
        ),
        "uploads/truncated.png": (half(png_alice), "invalid_image", "image format"),
        "uploads/truncated.webp": (half(picture(ALICE, fmt="WEBP")), "invalid_image", "WEBP"),
        "uploads/truncated.heic": (half(picture(ALICE, fmt="HEIF")), "invalid_image", "HEIC/HEIF"),
        "uploads/garbage.tiff": (b"II*\x00" + bytes(range(256)) * 4, "invalid_image", "TIFF"),
        "uploads/bomb.bmp": (
            bmp_claiming(30000, 30000),
            "invalid_image",
            "image too large: 30000\N{MULTIPLICATION SIGN}30000 pixels",
        ),
        "uploads/tiny.gif": (
            picture(ALICE, fmt="GIF", size=(60, 40)),
            "invalid_image",
            "too small",
        ),
        "uploads/too-big.png": (face_png(ALICE) + bytes(300_000), "invalid_image", "too large"),
        "uploads/alice.webp": (picture(ALICE, fmt="WEBP"), "matched", None),
        "uploads/alice.heic": (picture(ALICE, fmt="HEIF"), "matched", None),
        "uploads/bob.tiff": (picture(BOB, fmt="TIFF"), "matched", None),
        "uploads/bob.bmp": (picture(BOB, fmt="BMP"), "matched", None),
        "uploads/animated.gif": (animated_gif(), "matched", None),
        "uploads/really-a-png.jpg": (png_alice, "matched", None),
        "uploads/really-a-gif.jpg": (picture(BOB, fmt="GIF"), "matched", None),
        "uploads/blank.webp": (picture(fmt="WEBP"), "no_face", None),
        "uploads/spaces + plus %25 100%.png": (png_alice, "matched", None),
        "uploads/zoë/日本語 😀.png": (png_alice, "matched", None),
        "uploads/tab\there.png": (png_alice, "matched", None),
        LONG_KEY: (png_alice, "matched", None),
    }


def assert_result(published: Published, key: str, status: str, words: str | None) -> None:
    record = published.record
    assert record["key"] == key
    assert record["status"] == status, f"{key!r}: {record}"
    if words is None:
        assert record["reason"] is None
    else:
        assert words in (record["reason"] or ""), f"{key!r}: reason {record['reason']!r}"
    subject = published.subject
    assert len(subject) <= 99
    assert subject.isascii()
    assert subject.isprintable()
    assert subject.startswith(SUBJECT_PREFIX[status]), subject
    assert published.attributes["status"]["Value"] == status


def test_two_dozen_hostile_uploads_each_get_a_clear_result(
    stack: Stack, start_worker: StartWorker
) -> None:
    stack.put("references/alice.png", face_png(ALICE))
    stack.put("references/bob.png", face_png(BOB))
    rotated, upright_box = rotated_webp()
    uploads = hostile_uploads()
    uploads["uploads/rotated.webp"] = (rotated, "matched", None)
    worker = start_worker(MAX_OBJECT_BYTES="200000")
    for key, (body, _, _) in uploads.items():
        stack.put(key, body)

    published = {p.record["key"]: p for p in stack.published(len(uploads), timeout=90)}
    stack.no_more_published(wait=2)
    assert set(published) == set(uploads)
    for key, (_, status, words) in uploads.items():
        assert_result(published[key], key, status, words)
        stored = stack.s3.get_object(Bucket=stack.bucket, Key=result_key(key, "results/"))
        assert json.loads(stored["Body"].read()) == published[key].record

    labels = {key: [m["label"] for m in p.record["matches"]] for key, p in published.items()}
    assert labels["uploads/animated.gif"] == ["alice"], "the first frame, not the later ones"
    assert labels["uploads/bob.tiff"] == ["bob"]
    assert labels["uploads/really-a-gif.jpg"] == ["bob"]
    assert result_key(LONG_KEY, "results/").startswith("results/_long/")
    face = published["uploads/rotated.webp"].record["matches"][0]["face"]
    for side in ("left", "top", "width", "height"):
        assert face[side] == pytest.approx(upright_box[side], abs=0.03), "EXIF orientation applied"

    stack.wait_drained()
    assert stack.queue_depth(stack.dlq_url) == 0, "no upload is dead-lettered"
    assert worker.proc.poll() is None, "the worker is still running"
    assert not worker.events("unhandled_error")
    assert worker.terminate() == 0


# ------------------------------------------------------------------------------ hostile messages


def s3_record(bucket: str, raw_key: str, name: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {"eventName": name, "s3": {"bucket": {"name": bucket}, "object": {"key": raw_key}}}


def hostile_messages(bucket: str) -> dict[str, tuple[str, str]]:
    """name → (SQS body, words expected in the DLQ's error_message)."""
    return {
        "not json": ("this is not an event", "not JSON"),
        "json array": ("[1, 2, 3]", "expected an object"),
        "empty records": (json.dumps({"Records": []}), "Records is empty"),
        "record without s3": (
            json.dumps({"Records": [{"eventName": "x"}]}),
            "lacks s3.bucket.name",
        ),
        "key too long": (
            json.dumps({"Records": [s3_record(bucket, quote_plus("uploads/" + "é" * 600))]}),
            "longer than 1024 bytes",
        ),
        "sns with junk": (
            json.dumps({"Type": "Notification", "Message": "{oops"}),
            "Message is not JSON",
        ),
        "unknown shape": (json.dumps({"hello": "world"}), "not an S3 event"),
        "huge junk": ("x" * (250 * 1024), "not JSON"),
        "control characters": ("\x01\x02 \ufffe junk", "not JSON"),
    }


def test_hostile_messages_are_dead_lettered_with_reasons_and_redrive_brings_them_back(
    stack: Stack,
    start_worker: StartWorker,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack.put("references/alice.png", face_png(ALICE))
    worker = start_worker()
    messages = hostile_messages(stack.bucket)
    for body, _ in messages.values():
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
    # Not dead-lettered: acknowledged with nothing to publish.
    harmless = [
        json.dumps({"Records": [s3_record("someone-elses-bucket", "uploads/x.png")]}),
        json.dumps({"Records": [s3_record(stack.bucket, "uploads/never-existed.png")]}),
        json.dumps({"Records": [s3_record(stack.bucket, "uploads/x.png", "ObjectRestore:Post")]}),
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": stack.bucket}),
    ]
    for body in harmless:
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)

    stack.wait_drained()
    stack.no_more_published(wait=2)
    assert worker.events("upload_gone"), "a missing object is logged"

    code, out = dlq_cli(stack, monkeypatch, capsys, "list", "--json")
    assert code == 0
    listed = [json.loads(line) for line in out.splitlines()]
    assert len(listed) == len(messages)
    assert {row["error_type"] for row in listed} == {"BadMessage"}
    reasons = sorted(row["error_message"] for row in listed)
    for name, (_, words) in messages.items():
        assert any(words in reason for reason in reasons), f"{name}: {words!r} not in {reasons}"
    assert all(row["objects"] == [] for row in listed)
    assert stack.queue_depth(stack.dlq_url) == len(messages), "listing consumed nothing"
    assert worker.proc.poll() is None, "the worker is still running"

    assert worker.terminate() == 0

    # A real event that kept failing (an outage) reaches the DLQ through the redrive policy;
    # here it is moved by hand while no worker runs.
    late_key = "uploads/late + arrival é.png"
    stack.put(late_key, face_png(ALICE))
    (event,) = [
        m
        for m in stack.sqs.receive_message(
            QueueUrl=stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2
        )["Messages"]
    ]
    stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=event["Body"])
    stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=event["ReceiptHandle"])

    code, out = dlq_cli(stack, monkeypatch, capsys, "list", "--json")
    (outage,) = [row for row in map(json.loads, out.splitlines()) if row["objects"]]
    assert outage["objects"][0]["key"] == late_key
    assert (outage["error_type"], outage["error_message"]) == ("", "")

    code, out = dlq_cli(stack, monkeypatch, capsys, "redrive")
    assert code == 0
    assert out == f"moved {len(messages) + 1} messages to {stack.queue_url}\n"
    assert stack.queue_depth(stack.dlq_url) == 0

    worker = start_worker()
    (result,) = stack.published(1)
    assert result.record["key"] == late_key
    assert result.record["status"] == "matched"
    stack.wait_drained()
    stack.no_more_published(wait=1)
    # The junk is back on the DLQ, still with its reasons; the worker runs on.
    code, out = dlq_cli(stack, monkeypatch, capsys, "list", "--json")
    assert sorted(json.loads(line)["error_message"] for line in out.splitlines()) == reasons
    assert worker.proc.poll() is None
    assert worker.terminate() == 0


def test_an_object_deleted_before_processing_gets_no_result(
    stack: Stack, start_worker: StartWorker, fake_rekognition: FakeRekognition
) -> None:
    stack.put("uploads/gone.png", face_png(ALICE))
    stack.s3.delete_object(Bucket=stack.bucket, Key="uploads/gone.png")
    worker = start_worker()
    stack.wait_drained()
    stack.no_more_published(wait=2)
    assert worker.events("upload_gone")
    assert stack.queue_depth(stack.dlq_url) == 0
    assert fake_rekognition.calls["DetectFaces"] == 0
