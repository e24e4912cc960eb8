"""Calls and latency per upload for the `compare` and `collection` strategies, with 1, 10, 100
and 1,000 reference photos, on the embedded AWS (moto + the local face engine behind boto3).
Prints a table; asserts nothing. Usage::

    .venv/bin/python bench/strategies.py [--sizes 1,10,100,1000] [FACES_DIR]

Reference photos are the shared corpus's photos, cycled under distinct keys (each key is a
distinct reference for the worker and for the engine's caches). Uploads are one single-face
photo and one two-person photo. Calls are counted on the worker's own Rekognition client.
Latency is the wall time of DetectFaces + matching for one upload, after a first (warm-up)
upload that fills the engine's caches and, for `collection`, indexes the references.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from worker.app import Matching, build_matching
from worker.aws.clients import make_clients
from worker.events import ObjectRef
from worker.local.engine.server import EmbeddedAWS
from worker.matching import best_per_label
from worker.recognition.strategy import analyse
from worker.settings import load_settings
from worker.telemetry import logs
from worker.telemetry.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT.parent / "shared" / "faces"
UPLOADS = {"single": "obama/obama.jpg", "pair": "_multi/two_people.jpg"}
MEASURED_RUNS = 2
LARGE = 500


def corpus(faces_dir: Path) -> list[Path]:
    return [
        path
        for person in sorted(d for d in faces_dir.iterdir() if d.is_dir() and d.name[0] != "_")
        for path in sorted(person.iterdir())
        if path.suffix.lower() in {".jpg", ".jpeg", ".png"}
    ]


def count_calls(matching: Matching) -> Counter[str]:
    calls: Counter[str] = Counter()
    client: Any = matching.rekognition._client  # the worker's own client
    client.meta.events.register(
        "before-call.rekognition.*", lambda model, **_: calls.update([model.name])
    )
    return calls


def run_upload(
    matching: Matching, bucket: str, key: str, threshold: float
) -> tuple[float, set[str]]:
    started = time.perf_counter()
    upload = matching.objects.head(ObjectRef(bucket=bucket, key=key))
    image = matching.objects.image_for_rekognition(upload)
    result = analyse(matching.strategy, image, threshold)
    labels = {m.label for m in best_per_label(result.candidates, threshold)}
    return time.perf_counter() - started, len(result.faces), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("faces_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--sizes", default="1,10,100,1000")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    photos = corpus(args.faces_dir)
    print(f"{len(photos)} distinct photos cycled as references; uploads: {UPLOADS}")
    print(
        f"{'refs':>5} {'strategy':<10} {'upload':<7} {'faces':>5} {'calls/upload':<32} "
        f"{'latency s':>9} {'setup s':>8}  labels"
    )
    logs.configure("WARNING")
    with EmbeddedAWS() as aws:
        os.environ.update(aws.environment())
        s3 = aws.client("s3")
        for size in sizes:
            bucket = f"bench-{uuid.uuid4().hex[:10]}"
            s3.create_bucket(Bucket=bucket)
            for index in range(size):
                photo = photos[index % len(photos)]
                s3.put_object(
                    Bucket=bucket,
                    Key=f"references/{photo.parent.name}/{index:04d}-{photo.name}",
                    Body=photo.read_bytes(),
                )
            for name, rel in UPLOADS.items():
                s3.put_object(
                    Bucket=bucket,
                    Key=f"uploads/{name}.jpg",
                    Body=(args.faces_dir / rel).read_bytes(),
                )
            for strategy in ("compare", "collection"):
                settings = load_settings(
                    bucket_name=bucket,
                    strategy=strategy,
                    collection_id=f"bench-{uuid.uuid4().hex[:8]}",
                    concurrency=8,
                )
                matching = build_matching(settings, make_clients(), Metrics())
                calls = count_calls(matching)
                setup, _, _ = run_upload(matching, bucket, "uploads/single.jpg", 80.0)
                # At 1,000 references one compare upload takes minutes on 2 cores (the engine's
                # analysis cache holds 512 photos): measure fewer runs there.
                big = size >= LARGE
                for name in ["single"] if big and strategy == "compare" else list(UPLOADS):
                    timings = []
                    for _ in range(1 if big else MEASURED_RUNS):
                        calls.clear()
                        seconds, faces, labels = run_upload(
                            matching, bucket, f"uploads/{name}.jpg", 80.0
                        )
                        timings.append(seconds)
                    per_upload = ", ".join(f"{op} {n}" for op, n in sorted(calls.items()))
                    print(
                        f"{size:>5} {strategy:<10} {name:<7} {faces:>5} "
                        f"{per_upload:<32} {statistics.median(timings):>9.3f} {setup:>8.1f}  "
                        f"{','.join(sorted(labels))}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
