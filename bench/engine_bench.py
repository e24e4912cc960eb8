"""Benchmark the local face engine: seconds per photo (detection + embedding) at 1 and 4
megapixels, peak RSS, and CompareFaces calls per second against 20 references through boto3 on
the embedded endpoint. Prints figures; asserts nothing. Usage::

    .venv/bin/python bench/engine_bench.py [FACES_DIR]
"""

from __future__ import annotations

import io
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from worker.local.engine.models import FaceModels
from worker.local.engine.server import EmbeddedAWS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT.parent / "shared" / "faces"
PHOTOS = 16
REFERENCES = 20
UPLOADS = 6
THREADS = 8
BUCKET = "bench-photos"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def corpus(faces_dir: Path) -> list[Path]:
    """One or two ordinary photos per identity (not the 150 px chips), JPEG or PNG."""
    paths: list[Path] = []
    for person in sorted(d for d in faces_dir.iterdir() if d.is_dir() and d.name[0] != "_"):
        for path in sorted(person.iterdir())[:2]:
            with Image.open(path) as image:
                if image.format in {"JPEG", "PNG"}:
                    paths.append(path)
    return paths


def at_megapixels(path: Path, megapixels: float) -> bytes:
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    scale = (megapixels * 1e6 / (rgb.width * rgb.height)) ** 0.5
    resized = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.BICUBIC)
    out = io.BytesIO()
    resized.save(out, "JPEG", quality=90)
    return out.getvalue()


def per_photo(models: FaceModels, photos: list[bytes]) -> list[float]:
    times = []
    for data in photos:
        started = time.perf_counter()
        analysis = models.analyse(data)
        models.embed(analysis.faces)
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    faces_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR
    if not faces_dir.is_dir():
        print(f"no face corpus at {faces_dir}")
        return 2
    print(f"peak RSS at start: {rss_mb():.0f} MB")
    started = time.perf_counter()
    models = FaceModels()
    print(f"model load: {time.perf_counter() - started:.2f} s, peak RSS {rss_mb():.0f} MB")

    paths = corpus(faces_dir)
    for megapixels in (1.0, 4.0):
        photos = [at_megapixels(p, megapixels) for p in paths[:PHOTOS]]
        times = per_photo(models, photos)
        print(
            f"{megapixels:.0f} MP, detection + embedding of every face, {len(times)} photos: "
            f"median {statistics.median(times):.3f} s, max {max(times):.3f} s, "
            f"mean {statistics.fmean(times):.3f} s; peak RSS {rss_mb():.0f} MB"
        )

    with EmbeddedAWS(preload_models=False) as aws:
        aws.backend._models = models  # reuse the loaded models (same process)
        s3 = aws.client("s3")
        rekognition = aws.client("rekognition")
        s3.create_bucket(Bucket=BUCKET)
        refs = [f"references/{i:02d}{p.suffix}" for i, p in enumerate(paths[:REFERENCES])]
        for key, path in zip(refs, paths, strict=False):
            s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
        uploads = [f"uploads/{i}.jpg" for i in range(UPLOADS + 1)]
        for key, path in zip(uploads, paths[REFERENCES:] + paths, strict=False):
            s3.put_object(Bucket=BUCKET, Key=key, Body=at_megapixels(path, 1.0))

        def compare(ref: str, upload: str) -> None:
            rekognition.compare_faces(
                SourceImage={"S3Object": {"Bucket": BUCKET, "Name": ref}},
                TargetImage={"S3Object": {"Bucket": BUCKET, "Name": upload}},
                SimilarityThreshold=80,
            )

        started = time.perf_counter()
        for ref in refs:
            compare(ref, uploads[0])
        cold = time.perf_counter() - started
        print(
            f"CompareFaces, first upload vs {len(refs)} uncached references (sequential): "
            f"{cold:.2f} s, {len(refs) / cold:.1f} calls/s"
        )
        started = time.perf_counter()
        for upload in uploads[1:4]:
            for ref in refs:
                compare(ref, upload)
        warm = time.perf_counter() - started
        calls = 3 * len(refs)
        print(
            f"CompareFaces, new 1 MP upload vs {len(refs)} cached references (sequential): "
            f"{calls / warm:.1f} calls/s, {warm / 3:.2f} s per upload"
        )
        pairs = [(ref, upload) for upload in uploads[4:] for ref in refs]
        with ThreadPoolExecutor(THREADS) as pool:
            started = time.perf_counter()
            list(pool.map(lambda pair: compare(*pair), pairs))
            threaded = time.perf_counter() - started
        print(
            f"CompareFaces, {len(uploads[4:])} new uploads vs {len(refs)} cached references "
            f"({THREADS} threads): {len(pairs) / threaded:.1f} calls/s, "
            f"{threaded / len(uploads[4:]):.2f} s per upload"
        )
        started = time.perf_counter()
        for ref in refs:
            compare(ref, uploads[1])
        cached = time.perf_counter() - started
        print(f"CompareFaces, everything cached (sequential): {len(refs) / cached:.1f} calls/s")
        cache = aws.backend.cache
        print(f"analysis cache: {cache.misses} analyses, {cache.hits} hits")
    print(f"peak RSS (engine + embedded moto + boto3, one process): {rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
