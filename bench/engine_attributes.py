"""Measure the engine's AgeRange and Gender (attributes.py) on ../shared/faces (or a folder given).

The corpus has no ages or genders, so this measures what can be measured without them: how
consistent the networks are across the photos of one person (a person has one gender; the photos
of one person span a few years at most), how wide the reported age ranges are, and the cost per
face. Prints the figures quoted in docs/local-engine.md. Usage::

    .venv/bin/python bench/engine_attributes.py [FACES_DIR]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from worker.local.engine.attributes import AttributeModels, Estimate
from worker.local.engine.exceptions import RekognitionError
from worker.local.engine.models import FaceModels

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT.parent / "shared" / "faces"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def main() -> int:
    faces_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR
    if not faces_dir.is_dir():
        print(f"no face corpus at {faces_dir}")
        return 2
    models, attributes = FaceModels(), AttributeModels()
    attributes.estimate([])  # nothing to load yet: the networks load on the first real face
    people = sorted(d for d in faces_dir.iterdir() if d.is_dir() and not d.name.startswith("_"))
    found: dict[str, list[Estimate]] = {}
    seconds: list[float] = []
    load = 0.0
    for person in people:
        for path in sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            try:
                faces = models.analyse(path.read_bytes()).faces
            except RekognitionError:
                continue
            if not faces:
                continue
            started = time.perf_counter()
            [estimate] = attributes.estimate(faces[:1])
            elapsed = time.perf_counter() - started
            if not found and not load:
                load = elapsed  # the first call loads the networks
            else:
                seconds.append(elapsed)
            if estimate is not None:
                found.setdefault(person.name, []).append(estimate)

    photos = sum(len(v) for v in found.values())
    agree = sum(Counter(e.gender for e in v).most_common(1)[0][1] for v in found.values())
    widths = [e.age_high - e.age_low for v in found.values() for e in v]
    spreads = [
        statistics.pstdev([(e.age_low + e.age_high) / 2 for e in v])
        for v in found.values()
        if len(v) > 1
    ]
    confidences = [e.gender_confidence for v in found.values() for e in v]
    print(f"{photos} photos of {len(found)} people (largest face of each photo)")
    print(
        f"gender: {agree}/{photos} photos agree with their person's majority "
        f"({100 * agree / photos:.1f} %); confidence median {statistics.median(confidences):.1f}"
    )
    for name, estimates in found.items():
        genders = Counter(e.gender for e in estimates)
        ranges = " ".join(f"{e.age_low}-{e.age_high}" for e in estimates)
        print(f"  {name:16s} {dict(genders)}  ages {ranges}")
    print(
        f"AgeRange width (High - Low, years): median {statistics.median(widths):.0f}, "
        f"max {max(widths)}, zero-width {sum(w == 0 for w in widths)}/{len(widths)}"
    )
    print(
        "spread of the range's middle across one person's photos (std, years): "
        f"median {statistics.median(spreads):.1f}, max {max(spreads):.1f}"
    )
    print(
        f"cost: first call (loads the networks) {1000 * load:.0f} ms; then per face "
        f"median {1000 * statistics.median(seconds):.1f} ms, max {1000 * max(seconds):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
