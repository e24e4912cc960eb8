"""`worker upload FILE… [--key KEY] [--wait [--timeout S]]` — put photos under UPLOAD_PREFIX, and
optionally wait for their results: the local loop without the AWS CLI."""

from __future__ import annotations

import argparse
import mimetypes
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from worker.aws.clients import make_client
from worker.aws.errors import translate
from worker.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, positive_float, start
from worker.cli.results import WATCH_WIDTHS, row, table
from worker.errors import ConfigError, NotFoundError, PermanentError
from worker.references import normalise_etag
from worker.results import ResultRecord
from worker.store import ResultStore

DEFAULT_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Uploaded:
    """One object put, and what identifies this very version of it in its result record."""

    key: str
    etag: str
    version_id: str | None

    def made(self, record: ResultRecord) -> bool:
        """True when ``record`` is the result of this upload (not of an older one)."""
        if self.version_id and record.version_id:
            return record.version_id == self.version_id
        return record.etag == self.etag


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "upload",
        help="upload photos under UPLOAD_PREFIX; --wait prints each result when it is written",
        description=(
            "Uploads each FILE to BUCKET_NAME as UPLOAD_PREFIX + its file name (uploads/photo.jpg), "
            "which is what `worker run` processes. With --wait, prints each upload's result (the "
            "same columns as `worker results`) as soon as its record for this very upload is "
            "written. Exit 0 when every upload is done (and, with --wait, has its result), 1 when "
            "a result is missing after --timeout or an upload failed, 2 when a FILE is missing or "
            "two FILEs would get the same key, or BUCKET_NAME is unset."
        ),
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="photos to upload")
    parser.add_argument(
        "--key",
        metavar="NAME",
        help="with one FILE: its key under UPLOAD_PREFIX instead of its file name (e.g. team/a.jpg)",
    )
    parser.add_argument(
        "--wait", action="store_true", help="wait for each upload's result and print it"
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"with --wait: give up after this long (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    parser.set_defaults(handler=handle)


def _usage(problem: str) -> int:
    print(f"worker upload: {problem}", file=sys.stderr)
    return EXIT_CONFIG


def object_keys(files: list[Path], prefix: str, key: str | None) -> dict[str, Path]:
    """Key → file: ``prefix`` + the file name, or + ``key`` (one file only)."""
    if key is not None:
        name = key.lstrip("/")
        return {name if name.startswith(prefix) else prefix + name: files[0]}
    return {prefix + path.name: path for path in files}


def handle(args: argparse.Namespace) -> int:
    files: list[Path] = args.files
    if args.key is not None and len(files) != 1:
        return _usage("--key names one upload: give exactly one FILE with it")
    for path in files:
        if not path.exists():
            return _usage(f"no such file: {path}")
        if not path.is_file():
            return _usage(f"not a file: {path}")
    settings = start("bucket_name")
    keys = object_keys(files, settings.upload_prefix, args.key)
    if len(keys) != len(files):
        return _usage("two FILEs have the same file name, so they would get the same key")
    s3 = make_client("s3")
    bucket = settings.bucket
    done: list[Uploaded] = []
    for key, path in keys.items():
        done.append(put(s3, bucket, key, path))
        print(f"uploaded {path} to s3://{bucket}/{key}", flush=True)
    if not args.wait:
        return EXIT_OK
    store = ResultStore(s3, bucket, settings.result_prefix)
    missing = wait_for_results(store, done, args.timeout)
    for upload in missing:
        print(
            f"worker upload: no result for {upload.key} within {args.timeout:g} s "
            "(is `worker run` running? `worker status` shows the queue)",
            file=sys.stderr,
        )
    return EXIT_FAILED if missing else EXIT_OK


def put(s3: Any, bucket: str, key: str, path: Path) -> Uploaded:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    try:
        with path.open("rb") as body:
            answer = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    except OSError as exc:
        raise PermanentError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (ClientError, BotoCoreError) as exc:
        error = translate(exc)
        if isinstance(error, NotFoundError):
            raise ConfigError([f"BUCKET_NAME: bucket {bucket!r} does not exist"]) from exc
        raise error from exc
    return Uploaded(key, normalise_etag(answer.get("ETag")), answer.get("VersionId"))


def wait_for_results(store: ResultStore, uploads: list[Uploaded], timeout: float) -> list[Uploaded]:
    """Print each upload's result as it appears; return those still without one at the end."""
    waiting = list(uploads)
    widths = (WATCH_WIDTHS[0], WATCH_WIDTHS[1], max(len(u.key) for u in uploads), WATCH_WIDTHS[3])
    deadline = time.monotonic() + timeout
    while waiting:
        for upload in list(waiting):
            try:
                record = store.read(upload.key)
            except NotFoundError:
                continue
            if upload.made(record):
                print(table([row(record)], widths)[0], flush=True)
                waiting.remove(upload)
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    return waiting
