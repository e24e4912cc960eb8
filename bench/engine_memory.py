"""RSS of `worker embedded` over many mixed Rekognition calls (issue 14, item 7: at most 500 MB
after 10,000 calls on the team's photos).

Starts ``python -m worker embedded --port 0`` (moto and the local face engine on one endpoint) in
a subprocess and drives ``--calls`` Rekognition calls through boto3 over HTTP from ``--threads``
threads: DetectFaces (Bytes and S3Object), CompareFaces (one of 20 reference objects against an
image), SearchFacesByImage, IndexFaces, SearchFaces, ListFaces, DeleteFaces, and now and then
CreateCollection or DeleteCollection (at most 3 collections). Images are variants of the
corpus's photos (scaled 60-140 %, EXIF orientation applied, re-encoded as JPEG at quality
70-95): ``--new-share`` of the calls send an image never sent before (about 1,500 distinct images
in 10,000 calls, far beyond the engine's cache budget); the others send one of the 50 most
recent images (mostly cache hits, as a worker comparing uploads with the same references makes
them) or, one time in six, any earlier one. S3 uploads of the images are not counted as calls;
S3 holds at most ``S3_KEYS`` of them (keys are reused).

Every ``--every`` calls it reads the server's ``VmRSS`` and ``VmHWM`` (its peak RSS) from
``/proc/PID/status`` and prints a row: calls, RSS MB, peak MB, calls/s over the interval,
distinct images so far, errors so far. Errors the API gives for these images (no face in a
CompareFaces or SearchFacesByImage image: ``InvalidParameterException``) are counted, not
fatal. Exits 1 when the final or the peak RSS is over ``--limit-mb``. Usage::

    .venv/bin/python -m bench.engine_memory [--calls 10000] [--default-malloc] [FACES_DIR]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from PIL import Image, ImageOps

# The team's photos, beside the checkout (never in it).
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "faces"
# Issue 14, item 7: RSS after 10,000 mixed calls.
LIMIT_MB = 500
# CompareFaces sources: the first images (photos of people, as they are), cached after first use.
REFERENCES = 20
# Most reused images are among the last RECENT images sent.
RECENT = 50
# CreateCollection until there are this many, then DeleteCollection of the oldest.
MAX_COLLECTIONS = 3
BUCKET = "bench-memory"
# Images are put in S3 under this many keys, each overwritten by a later image: moto keeps every
# object in the server's memory, and what a user stores there is not the engine's to bound.
S3_KEYS = 300
START_TIMEOUT_S = 120
# Share of each operation among the calls (weights, summing to 100).
OPERATIONS = {
    "DetectFaces/Bytes": 20,
    "DetectFaces/S3Object": 10,
    "CompareFaces": 30,
    "SearchFacesByImage": 15,
    "IndexFaces": 8,
    "SearchFaces": 6,
    "ListFaces": 5,
    "DeleteFaces": 4,
    "Create/DeleteCollection": 2,
}


# ------------------------------------------------------------------------------------- images


def corpus(faces_dir: Path) -> list[Image.Image]:
    """Every photo Pillow opens under ``faces_dir`` (one folder down), upright, RGB: the
    people's folders first (the references are among them), then ``_multi``, ``_noface``…"""
    photos = []
    for path in sorted(faces_dir.glob("*/*"), key=lambda p: (p.parent.name[0] == "_", p)):
        try:
            with Image.open(path) as image:
                photos.append(ImageOps.exif_transpose(image).convert("RGB"))
        except OSError:
            continue
    return photos


def variant(photos: list[Image.Image], number: int) -> bytes:
    """The ``number``-th distinct image: photo ``number % len(photos)``, scaled and re-encoded
    by ``number // len(photos)`` (0: the photo itself, as JPEG at quality 90)."""
    photo = photos[number % len(photos)]
    level = number // len(photos)
    scale = 1.0 if level == 0 else 0.6 + 0.8 * ((level * 7) % 16) / 15
    quality = 90 if level == 0 else 70 + (level * 3) % 26
    size = (max(32, round(photo.width * scale)), max(32, round(photo.height * scale)))
    out = io.BytesIO()
    photo.resize(size, Image.Resampling.BILINEAR).save(out, "JPEG", quality=quality)
    return out.getvalue()


@dataclass(frozen=True)
class Step:
    operation: str
    image: int  # a variant number
    pick: float  # picks a reference, a face or a collection at run time


def plan(calls: int, new_share: float, seed: int) -> list[Step]:
    """The calls, in order: each with its operation and image (new, recent or any earlier)."""
    rng = random.Random(seed)
    names, weights = list(OPERATIONS), list(OPERATIONS.values())
    steps: list[Step] = []
    fresh = REFERENCES  # variants 0..REFERENCES-1 are the references
    for _ in range(calls):
        if fresh == REFERENCES or rng.random() < new_share:
            image, fresh = fresh, fresh + 1
        elif rng.random() < 5 / 6:
            image = rng.randrange(max(REFERENCES, fresh - RECENT), fresh)
        else:
            image = rng.randrange(REFERENCES, fresh)
        steps.append(Step(rng.choices(names, weights)[0], image, rng.random()))
    return steps


# ------------------------------------------------------------------------------------- server


def start_server(default_malloc: bool, log: Any) -> tuple[subprocess.Popen[str], str]:
    """`worker embedded` on a free port: the process and its endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(LOG_FORMAT="json", LOG_LEVEL="INFO")
    command = [sys.executable, "-m", "worker", "embedded", "--port", "0"]
    if default_malloc:
        command.append("--default-malloc")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    for line in process.stdout:  # the export lines
        name, _, value = line.removeprefix("export ").strip().partition("=")
        if name == "AWS_ENDPOINT_URL":
            return process, value
        if time.monotonic() > deadline:
            break
    process.kill()
    raise RuntimeError("worker embedded did not print its endpoint")


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of process ``pid``, MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def client(service: str, endpoint: str, threads: int) -> Any:
    config = Config(
        retries={"total_max_attempts": 1}, max_pool_connections=threads, read_timeout=300
    )
    return boto3.session.Session().client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token=None,
        config=config,
    )


# ------------------------------------------------------------------------------------- driver


@dataclass
class State:
    """What the calls share: images sent to S3, collections and their faces, tallies."""

    images: dict[int, bytes]
    rekognition: Any
    s3: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    uploaded: dict[str, int] = field(default_factory=dict)
    collections: list[str] = field(default_factory=list)
    faces: dict[str, list[str]] = field(default_factory=dict)
    created: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def s3_image(self, number: int) -> dict[str, Any]:
        """Image ``number`` as an S3 object, put there first unless it is (see S3_KEYS)."""
        key = f"refs/{number}.jpg" if number < REFERENCES else f"images/{number % S3_KEYS}.jpg"
        with self.lock:
            new = self.uploaded.get(key) != number
            self.uploaded[key] = number
        if new:
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=self.images[number])
        return {"S3Object": {"Bucket": BUCKET, "Name": key}}

    def collection(self) -> str:
        with self.lock:
            return self.collections[-1]

    def face(self, pick: float) -> tuple[str, str | None]:
        """The newest collection and one of its faces (None when it has none)."""
        with self.lock:
            cid = self.collections[-1]
            faces = self.faces[cid]
            return cid, faces[int(pick * len(faces))] if faces else None

    def rotate(self) -> None:
        """Delete the oldest collection when there are MAX_COLLECTIONS, else create one."""
        with self.lock:
            drop = self.collections.pop(0) if len(self.collections) >= MAX_COLLECTIONS else None
            if drop is None:
                self.created += 1
                new = f"bench-{self.created}"
        if drop is not None:
            self.rekognition.delete_collection(CollectionId=drop)
            return
        self.rekognition.create_collection(CollectionId=new)
        with self.lock:
            self.collections.append(new)
            self.faces[new] = []


def call(state: State, step: Step) -> None:
    rek, image = state.rekognition, state.images[step.image]
    operation = step.operation
    try:
        if operation == "DetectFaces/Bytes":
            rek.detect_faces(Image={"Bytes": image})
        elif operation == "DetectFaces/S3Object":
            rek.detect_faces(Image=state.s3_image(step.image))
        elif operation == "CompareFaces":
            target = state.s3_image(step.image) if step.pick < 0.5 else {"Bytes": image}
            rek.compare_faces(
                SourceImage=state.s3_image(int(step.pick * REFERENCES)),
                TargetImage=target,
                SimilarityThreshold=80,
            )
        elif operation == "SearchFacesByImage":
            rek.search_faces_by_image(
                CollectionId=state.collection(), Image={"Bytes": image}, MaxFaces=5
            )
        elif operation == "IndexFaces":
            cid = state.collection()
            answer = rek.index_faces(CollectionId=cid, Image=state.s3_image(step.image), MaxFaces=5)
            with state.lock:
                state.faces.setdefault(cid, []).extend(
                    record["Face"]["FaceId"] for record in answer["FaceRecords"]
                )
        elif operation in {"SearchFaces", "DeleteFaces"}:
            cid, face_id = state.face(step.pick)
            if face_id is None:
                operation = "ListFaces"
                rek.list_faces(CollectionId=cid, MaxResults=100)
            elif operation == "SearchFaces":
                rek.search_faces(CollectionId=cid, FaceId=face_id, MaxFaces=5)
            else:
                rek.delete_faces(CollectionId=cid, FaceIds=[face_id])
                with state.lock:
                    if face_id in state.faces.get(cid, []):
                        state.faces[cid].remove(face_id)
        elif operation == "ListFaces":
            rek.list_faces(CollectionId=state.collection(), MaxResults=100)
        else:
            state.rotate()
    except ClientError as exc:
        with state.lock:
            state.errors[f"{operation}: {exc.response['Error']['Code']}"] += 1
    with state.lock:
        state.calls[operation] += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("faces_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--every", type=int, help="calls between samples (default calls/20)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--new-share", type=float, default=0.15)
    parser.add_argument("--limit-mb", type=float, default=LIMIT_MB)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--default-malloc", action="store_true", help="serve with glibc's malloc defaults"
    )
    args = parser.parse_args()
    if not args.faces_dir.is_dir():
        print(f"no face corpus at {args.faces_dir}")
        return 2
    every = args.every or max(1, args.calls // 20)
    steps = plan(args.calls, args.new_share, args.seed)
    photos = corpus(args.faces_dir)
    started = time.perf_counter()
    images = {
        n: variant(photos, n) for n in sorted({s.image for s in steps} | set(range(REFERENCES)))
    }
    print(
        f"{len(photos)} photos, {len(images)} distinct images "
        f"({sum(map(len, images.values())) / 1e6:.0f} MB of JPEG, made in "
        f"{time.perf_counter() - started:.0f} s); {args.calls} calls from {args.threads} "
        f"threads; malloc: {'glibc defaults' if args.default_malloc else 'bounded'}",
        flush=True,
    )
    with tempfile.TemporaryFile("w+") as log:
        process, endpoint = start_server(args.default_malloc, log)
        try:
            return drive(args, every, steps, images, process.pid, endpoint)
        finally:
            process.terminate()
            process.wait(timeout=30)


def drive(
    args: argparse.Namespace,
    every: int,
    steps: list[Step],
    images: dict[int, bytes],
    pid: int,
    endpoint: str,
) -> int:
    s3 = client("s3", endpoint, args.threads)
    s3.create_bucket(Bucket=BUCKET)
    state = State(images, client("rekognition", endpoint, args.threads), s3)
    state.rotate()
    rss, peak = memory_mb(pid)
    print(f"{'calls':>7} {'RSS MB':>7} {'peak MB':>8} {'calls/s':>8} {'images':>7} {'errors':>7}")
    print(f"{0:>7} {rss:>7.0f} {peak:>8.0f} {'':>8} {0:>7} {0:>7}", flush=True)
    seen: set[int] = set()
    started = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        for first in range(0, len(steps), every):
            chunk = steps[first : first + every]
            began = time.perf_counter()
            list(pool.map(lambda step: call(state, step), chunk))
            rate = len(chunk) / (time.perf_counter() - began)
            seen.update(step.image for step in chunk)
            rss, peak = memory_mb(pid)
            errors = sum(state.errors.values())
            print(
                f"{first + len(chunk):>7} {rss:>7.0f} {peak:>8.0f} {rate:>8.1f} "
                f"{len(seen):>7} {errors:>7}",
                flush=True,
            )
    elapsed = time.perf_counter() - started
    print(
        f"\n{len(steps)} calls in {elapsed:.0f} s ({len(steps) / elapsed:.1f} calls/s); "
        f"final RSS {rss:.0f} MB, peak {peak:.0f} MB (limit {args.limit_mb:.0f} MB)"
    )
    print("calls: " + ", ".join(f"{op} {n}" for op, n in state.calls.most_common()))
    print("errors: " + (", ".join(f"{e} {n}" for e, n in state.errors.most_common()) or "none"))
    if max(rss, peak) > args.limit_mb:
        print(f"OVER THE LIMIT: {max(rss, peak):.0f} MB > {args.limit_mb:.0f} MB")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
