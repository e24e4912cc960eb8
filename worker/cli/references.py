"""`worker references list|sync|add|remove` — the reference set as the worker sees it, the
collection, and the photos themselves (add/remove: :mod:`worker.cli.reference_files`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from worker.app import build_matching
from worker.aws.clients import make_clients
from worker.cli import reference_files
from worker.cli.common import EXIT_OK, start
from worker.errors import NotFoundError
from worker.recognition.collection import external_id
from worker.telemetry.metrics import Metrics


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "references",
        help="list, add or remove reference faces; sync the Rekognition collection",
        description=(
            "Reference photos live under REFERENCE_PREFIX in BUCKET_NAME: "
            "references/<label>.<ext> or references/<label>/<any>.<ext> (JPEG or PNG)."
        ),
    )
    verbs = parser.add_subparsers(dest="references_verb", metavar="ACTION", required=True)
    listing = verbs.add_parser(
        "list",
        help="one line per reference photo: label, key, indexed face id",
        description=(
            "Lists the reference photos the worker would use, with the face id each has in the "
            "Rekognition collection (COLLECTION_ID) or '-' when it is not indexed."
        ),
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=handle_list)
    sync = verbs.add_parser(
        "sync",
        help="index new references into the collection and delete stale faces (idempotent)",
        description=(
            "Reconciles the Rekognition collection (COLLECTION_ID, created when missing) with the "
            "bucket: indexes the largest face of every reference photo not yet indexed, deletes "
            "faces whose photo was deleted or replaced. Running it twice changes nothing."
        ),
    )
    sync.set_defaults(handler=handle_sync)
    reference_files.register_actions(verbs)


def handle_list(args: argparse.Namespace) -> int:
    settings = start("bucket_name")
    matching = build_matching(settings, make_clients(), Metrics())
    refs = matching.references.get()
    try:
        faces = matching.collection.indexed_faces()
    except NotFoundError:  # no collection yet
        faces = {}
    for ref in refs:
        face_id = faces.get(external_id(ref))
        if args.json:
            row = {"label": ref.label, "key": ref.key, "etag": ref.etag, "face_id": face_id}
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(f"{ref.label}\t{ref.key}\t{face_id or '-'}")
    return EXIT_OK


def handle_sync(args: argparse.Namespace) -> int:
    settings = start("bucket_name")
    matching = build_matching(settings, make_clients(), Metrics())
    report = matching.collection.sync()
    print(
        f"collection {settings.collection_id}: {report.total} references, "
        f"{report.indexed} indexed now, {report.deleted} stale faces deleted, "
        f"{report.without_face} without a face"
    )
    return EXIT_OK
