"""Measure the local face engine's similarity scale on ../shared/faces (or a folder given).

Folders are identities (the folder name is the label); ``_multi``, ``_noface``, ``_partial`` and
``_scales`` are special (see the corpus README). Prints true-match and false-match rates at 80 and
other thresholds, and every exception by file name. Usage::

    .venv/bin/python bench/calibrate_engine.py [FACES_DIR]
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

from worker.local.engine.exceptions import RekognitionError
from worker.local.engine.models import Face, FaceModels, distance, similarity

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT.parent / "shared" / "faces"
THRESHOLDS = (50, 60, 70, 75, 80, 85, 90, 95, 99)
DEFAULT_THRESHOLD = 80
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
# Who is in the _multi photos (corpus README; couple.jpg holds df_p01 and a man not in the corpus).
MULTI_PEOPLE = {
    "two_people.jpg": {"obama", "biden"},
    "obama_and_biden.jpg": {"obama", "biden"},
    "kit_with_rose.jpg": {"kit_harington", "rose_leslie"},
    "couple.jpg": {"df_p01"},
}


def photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def main() -> int:
    faces_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR
    if not faces_dir.is_dir():
        print(f"no face corpus at {faces_dir}")
        return 2
    models = FaceModels()
    started = time.perf_counter()

    refused: list[str] = []

    def largest(path: Path) -> Face | None:
        try:
            analysis = models.analyse(path.read_bytes())
        except RekognitionError as exc:  # e.g. a WebP named .jpg: Rekognition refuses it too
            refused.append(f"{path.parent.name}/{path.name}: {exc.code}")
            return None
        if not analysis.faces:
            return None
        models.embed([analysis.faces[0]])
        return analysis.faces[0]

    people = sorted(d for d in faces_dir.iterdir() if d.is_dir() and not d.name.startswith("_"))
    faces: dict[str, list[tuple[str, Face]]] = {}
    missed: list[str] = []
    for person in people:
        for path in photos(person):
            face = largest(path)
            name = f"{person.name}/{path.name}"
            if face is None:
                if not refused or not refused[-1].startswith(name):
                    missed.append(name)
            else:
                faces.setdefault(person.name, []).append((name, face))

    same: list[tuple[float, str, str]] = []
    for items in faces.values():
        for (a, fa), (b, fb) in itertools.combinations(items, 2):
            same.append((similarity(distance(fa, fb)), a, b))
    different: list[tuple[float, str, str]] = []
    for p, q in itertools.combinations(sorted(faces), 2):
        for (a, fa), (b, fb) in itertools.product(faces[p], faces[q]):
            different.append((similarity(distance(fa, fb)), a, b))

    total = sum(len(v) for v in faces.values())
    print(f"corpus: {faces_dir}")
    print(
        f"identities: {len(faces)}, photos with a face: {total}, photos without one: {len(missed)}"
    )
    for name in missed:
        print(f"  no face found: {name}")
    for line in refused:
        print(f"  refused: {line}")
    print(f"pairs: {len(same)} same-person, {len(different)} different-person")
    print()
    print("threshold  true-match rate        false-match rate")
    for t in THRESHOLDS:
        tm = sum(s >= t for s, _, _ in same)
        fm = sum(s >= t for s, _, _ in different)
        print(
            f"{t:>9}  {100 * tm / len(same):6.2f} % ({tm:>4}/{len(same)})"
            f"  {100 * fm / len(different):6.3f} % ({fm:>4}/{len(different)})"
        )
    print()
    print(f"exceptions at {DEFAULT_THRESHOLD}:")
    for s, a, b in sorted(same):
        if s < DEFAULT_THRESHOLD:
            print(f"  same person below: {s:6.2f}  {a}  {b}")
    for s, a, b in sorted(different, reverse=True):
        if s >= DEFAULT_THRESHOLD:
            print(f"  different people above: {s:6.2f}  {a}  {b}")

    extra_sections(faces_dir, faces, largest, models)
    print(f"\ntook {time.perf_counter() - started:.1f} s")
    return 0


def extra_sections(
    faces_dir: Path,
    faces: dict[str, list[tuple[str, Face]]],
    largest: object,
    models: FaceModels,
) -> None:
    assert callable(largest)
    obama = faces.get("obama", [])
    for special in ("_scales", "_partial"):
        folder = faces_dir / special
        if not folder.is_dir() or not obama:
            continue
        print(f"\n{special} (obama) against the obama folder, best / worst similarity:")
        for path in photos(folder):
            face = largest(path)
            if face is None:
                print(f"  {path.name}: no face found")
                continue
            scores = [similarity(distance(face, ref)) for _, ref in obama]
            print(f"  {path.name}: {max(scores):6.2f} / {min(scores):6.2f}")
    folder = faces_dir / "_noface"
    if folder.is_dir():
        print("\n_noface: faces found")
        for path in photos(folder):
            print(f"  {path.name}: {len(models.analyse(path.read_bytes()).faces)}")
    folder = faces_dir / "_multi"
    if folder.is_dir():
        print(
            f"\n_multi: faces found, and the labels matched at {DEFAULT_THRESHOLD} (best reference)"
        )
        for path in photos(folder):
            analysis = models.analyse(path.read_bytes())
            models.embed(analysis.faces)
            found = []
            for label, refs in sorted(faces.items()):
                best = max(
                    (similarity(distance(f, r)) for f in analysis.faces for _, r in refs),
                    default=0.0,
                )
                if best >= DEFAULT_THRESHOLD:
                    wrong = "" if label in MULTI_PEOPLE.get(path.name, set()) else " (FALSE)"
                    found.append(f"{label} {best:.1f}{wrong}")
            print(f"  {path.name}: {len(analysis.faces)} faces; {', '.join(found) or '-'}")


if __name__ == "__main__":
    sys.exit(main())
