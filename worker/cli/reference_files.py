"""`worker references add FILE… --label NAME` and `worker references remove (--label NAME | KEY…)`:
put and delete reference photos under REFERENCE_PREFIX, following the label rule
(:func:`worker.references.label_for`). Registered by :mod:`worker.cli.references`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from worker.aws.clients import make_client
from worker.aws.errors import translate
from worker.cli.common import EXIT_CONFIG, EXIT_OK, start
from worker.errors import ConfigError, NotFoundError, WorkerError
from worker.images import SNIFF_BYTES, sniff
from worker.references import REFERENCE_EXTENSIONS, label_for, list_references

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png"}
# DeleteObjects takes at most 1,000 keys a call.
DELETE_BATCH = 1000
_EXTENSIONS = "/".join(sorted(REFERENCE_EXTENSIONS))
_NOTICE = (
    "The worker sees the change at its next look at the references (a reference notification, "
    "or REFERENCE_CACHE_TTL_SECONDS); `worker references sync` updates the collection now."
)


def register_actions(verbs: Any) -> None:
    adding = verbs.add_parser(
        "add",
        help="upload reference photos of one person: references/<label>/<file name>",
        description=(
            "Uploads each FILE (JPEG or PNG, named .jpg, .jpeg or .png) to BUCKET_NAME as "
            "REFERENCE_PREFIX + LABEL/ + its file name. LABEL is what results will say for this "
            "person: not empty, no '/', no spaces at either end. Every FILE is checked before any "
            "is uploaded. Exit 2 for a bad label, a missing file or one that is not a JPEG/PNG. "
            + _NOTICE
        ),
    )
    adding.add_argument("files", nargs="+", type=Path, metavar="FILE", help="photos of LABEL")
    adding.add_argument("--label", required=True, metavar="NAME", help="who the photos show")
    adding.set_defaults(handler=handle_add)
    removing = verbs.add_parser(
        "remove",
        help="delete reference photos: every photo of --label NAME, or the KEYs named",
        description=(
            "Deletes from BUCKET_NAME every reference photo whose label is NAME (both "
            "references/NAME.<ext> and references/NAME/…), or the reference photos KEY… "
            "(references/NAME/1.jpg). Exit 1 when nothing matches NAME or a KEY does not exist "
            "(nothing is deleted then), 2 for a KEY that is not a reference photo. " + _NOTICE
        ),
    )
    removing.add_argument("--label", metavar="NAME", help="remove every photo of NAME")
    removing.add_argument("keys", nargs="*", metavar="KEY", help="reference keys (or --label)")
    removing.set_defaults(handler=handle_remove)


def label_problem(label: str, prefix: str) -> str | None:
    """Why ``label`` cannot be a label under the label rule, or None when it can."""
    if label_for(f"{prefix}{label}/photo.jpg", prefix) == label:
        return None
    if not label.strip():
        return "a label must not be empty"
    if "/" in label:
        return f"a label cannot contain '/': {label!r}"
    return f"a label cannot start or end with spaces: {label!r}"


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a reference photo, or None when it can."""
    if not path.exists():
        return f"no such file: {path}"
    if not path.is_file():
        return f"not a file: {path}"
    if path.suffix.lower() not in REFERENCE_EXTENSIONS:
        return f"{path}: a reference photo's name ends with {_EXTENSIONS}"
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    if sniff(head) not in CONTENT_TYPES:
        return f"{path}: not a JPEG or PNG image"
    return None


def handle_add(args: argparse.Namespace) -> int:
    settings = start("bucket_name")
    prefix = settings.reference_prefix
    problems = [label_problem(args.label, prefix), *(file_problem(p) for p in args.files)]
    keys = {f"{prefix}{args.label}/{path.name}": path for path in args.files}
    if len(keys) != len(args.files):
        problems.append("two FILEs have the same file name, so they would get the same key")
    if any(problems):
        for problem in filter(None, problems):
            print(f"worker references add: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    s3 = make_client("s3")
    for key, path in keys.items():
        data = path.read_bytes()
        content_type = CONTENT_TYPES[sniff(data[:SNIFF_BYTES]) or "jpeg"]
        _call(
            settings.bucket,
            s3.put_object,
            Bucket=settings.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
        )
        print(f"added {path} as s3://{settings.bucket}/{key} (label {args.label})")
    return EXIT_OK


def handle_remove(args: argparse.Namespace) -> int:
    settings = start("bucket_name")
    prefix, bucket = settings.reference_prefix, settings.bucket
    if (args.label is None) == (not args.keys):
        print("worker references remove: give either --label NAME or KEY…", file=sys.stderr)
        return EXIT_CONFIG
    s3 = make_client("s3")
    if args.label is not None:
        found = _call(bucket, list_references, s3, bucket, prefix)
        keys = [ref.key for ref in found if ref.label == args.label]
        if not keys:
            raise NotFoundError(
                f"no reference photos labelled {args.label!r} under s3://{bucket}/{prefix} "
                "(`worker references list` shows them)"
            )
    else:
        keys = list(dict.fromkeys(args.keys))
        for key in keys:
            if label_for(key, prefix) is None:
                print(
                    f"worker references remove: {key!r} is not a reference photo "
                    f"({prefix}<label>.<ext> or {prefix}<label>/<name>.<ext>)",
                    file=sys.stderr,
                )
                return EXIT_CONFIG
        for key in keys:
            _exists(s3, bucket, key)
    for start_at in range(0, len(keys), DELETE_BATCH):
        chunk = keys[start_at : start_at + DELETE_BATCH]
        answer = _call(
            bucket,
            s3.delete_objects,
            Bucket=bucket,
            Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True},
        )
        errors = answer.get("Errors", [])
        if errors:
            first = errors[0]
            raise WorkerError(
                f"{len(errors)} reference photos not deleted, e.g. {first.get('Key')}: "
                f"{first.get('Code')} {first.get('Message', '')}".rstrip()
            )
    for key in keys:
        print(f"removed s3://{bucket}/{key} (label {label_for(key, prefix)})")
    return EXIT_OK


def _exists(s3: S3Client, bucket: str, key: str) -> None:
    try:
        _call(bucket, s3.head_object, Bucket=bucket, Key=key)
    except NotFoundError:
        raise NotFoundError(f"no reference photo s3://{bucket}/{key}") from None


def _call(bucket: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``, its botocore errors translated; a missing bucket is
    configuration (exit 2)."""
    try:
        return call(*args, **kwargs)
    except (ClientError, BotoCoreError, NotFoundError) as exc:
        error = translate(exc)
        if isinstance(error, NotFoundError) and error.code == "NoSuchBucket":
            raise ConfigError([f"BUCKET_NAME: bucket {bucket!r} does not exist"]) from exc
        raise error from exc
