"""`worker results [--watch] [--json] [--since …]` and `worker results show KEY [--annotate OUT]`
— read the result records under RESULT_PREFIX without writing code (:mod:`worker.ops.results`)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from worker.aws.clients import make_client
from worker.aws.errors import translate
from worker.cli.common import EXIT_OK, positive_float, positive_int, printable, start
from worker.errors import ConditionFailedError, InvalidImageError, NotFoundError, WorkerError
from worker.ops.results import Fetched, StoredResult, fetch_all, list_results
from worker.render import email_text, subject, summary
from worker.results import ResultRecord
from worker.store import ResultStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_SINCE = "24h"
DEFAULT_LIMIT = 20
DEFAULT_INTERVAL_SECONDS = 2.0
# `--watch` looks this far back before its start too: LastModified has whole seconds.
WATCH_SLACK = timedelta(seconds=5)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
HEADER = ("TIME", "STATUS", "KEY", "MATCHES", "SUBJECT")
# Column widths of the table's first four columns when they cannot be measured (`--watch`).
WATCH_WIDTHS = (20, 13, 40, 24)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30s``, ``15m``, ``2h``, ``7d``, ``1w`` (before ``now``) or an ISO 8601 moment (UTC unless
    it says otherwise). :class:`argparse.ArgumentTypeError` for anything else."""
    now = now or datetime.now(UTC)
    value = text.strip()
    duration = _DURATION.fullmatch(value)
    if duration:
        return now - timedelta(seconds=float(duration[1]) * _UNITS[duration[2].lower()])
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (30s, 15m, 2h, 7d, 1w) nor an ISO 8601 time "
            "(2026-05-01, 2026-05-01T12:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def row(record: ResultRecord) -> tuple[str, str, str, str, str]:
    """The table's cells for one record, each on one line."""
    cells = (
        record.processed_at,
        record.status.value,
        record.key,
        summary(record),
        subject(record),
    )
    return tuple(printable(cell) for cell in cells)  # type: ignore[return-value]


def table(rows: Sequence[Sequence[str]], widths: Sequence[int] | None = None) -> list[str]:
    """Aligned lines; the last column is never padded. ``widths``: of all but the last column."""
    if widths is None:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(r[:-1], widths, strict=True)), r[-1]]
        ).rstrip()
        for r in rows
    ]


def json_line(record: ResultRecord) -> str:
    """The record exactly as stored and published (the contract's record), on one line."""
    return json.dumps(record.to_json(), ensure_ascii=False)


# --------------------------------------------------------------------------- the verb


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "results",
        help="show recent results (a table, --json, or --watch); `results show KEY` for one",
        description=(
            "Lists the result records under RESULT_PREFIX (default results/) of BUCKET_NAME: time "
            "(processed_at, UTC), status, upload key, who matched and how sure (or the reason, or "
            "how many unknown faces), and the e-mail subject. Newest first; --watch prints the "
            "recent ones oldest first, then each new one as it is written, until Ctrl-C (exit 0). "
            "S3 cannot list by time: every key under the prefix is listed (1,000 a call), the "
            "records modified since --since are read. Exit 0 (also when there are none: a line on "
            "stderr says so), 1 on an AWS failure, 2 when BUCKET_NAME is unset or the bucket does "
            "not exist. `worker results show KEY` prints one record and its e-mail."
        ),
    )
    parser.add_argument(
        "--since",
        type=parse_since,
        default=DEFAULT_SINCE,
        metavar="DURATION|TIME",
        help=(
            f"only results written since then: 30s, 15m, 2h, 7d, 1w ago, or an ISO 8601 time "
            f"such as 2026-05-01T12:00:00Z (default {DEFAULT_SINCE})"
        ),
    )
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"the N newest at most (default {DEFAULT_LIMIT}; --watch: before following)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one record per line, as stored (the contract's record), for scripts",
    )
    parser.add_argument(
        "--watch", action="store_true", help="keep printing new results as they are written"
    )
    parser.add_argument(
        "--interval",
        type=positive_float,
        default=DEFAULT_INTERVAL_SECONDS,
        metavar="SECONDS",
        help=f"with --watch: seconds between two looks (default {DEFAULT_INTERVAL_SECONDS:g})",
    )
    parser.set_defaults(handler=handle_list)
    actions = parser.add_subparsers(dest="results_action", metavar="ACTION")
    show = actions.add_parser(
        "show",
        help="print one upload's record, its e-mail subject and its exact e-mail text",
        description=(
            "Prints the result record of the upload KEY (pretty JSON), then the subject and the "
            "text of the e-mail its SNS message carries, exactly as subscribers receive them. "
            "KEY is the upload's key (uploads/photo.jpg); s3://BUCKET/KEY and the record's own key "
            "(results/uploads/photo.jpg.json) work too. With --annotate, also draws each matched "
            "face's box, label and similarity on the upload and writes it as a JPEG. Exit 1 when "
            "the upload has no result (yet) or cannot be drawn on."
        ),
    )
    show.add_argument("key", metavar="KEY", help="the upload's key, e.g. uploads/photo.jpg")
    show.add_argument(
        "--annotate",
        type=Path,
        metavar="OUT.jpg",
        help="write the upload with the matched faces drawn on it to OUT.jpg (JPEG)",
    )
    show.set_defaults(handler=handle_show)


def handle_list(args: argparse.Namespace) -> int:
    settings = start("bucket_name")
    s3 = make_client("s3")
    bucket, prefix = settings.bucket, settings.result_prefix
    newest = list_results(s3, bucket, prefix, since=args.since)[: args.limit]
    fetched = [f for f in fetch_all(s3, bucket, newest) if _usable(f)]
    # Listed by LastModified (the record's last write, after its publish), shown by processed_at.
    records = sorted(
        (f.record for f in fetched if f.record is not None),
        key=lambda record: (record.processed_at, record.key),
        reverse=True,
    )
    if args.watch:
        return _watch(s3, bucket, prefix, args, first=list(reversed(records)), listed=newest)
    if not records:
        print(
            f"worker results: no results under s3://{bucket}/{prefix} since "
            f"{args.since.strftime('%Y-%m-%dT%H:%M:%SZ')}",
            file=sys.stderr,
        )
    _print(records, args.json)
    return EXIT_OK


def _usable(fetched: Fetched) -> bool:
    """Reports, on stderr, an object under the prefix that is not a record; skips it."""
    if fetched.problem is not None:
        print(f"worker results: skipped {fetched.stored.key}: {fetched.problem}", file=sys.stderr)
    return fetched.record is not None


def _print(
    records: Iterable[ResultRecord], as_json: bool, widths: Sequence[int] | None = None
) -> None:
    records = list(records)
    if not records:
        return
    if as_json:
        lines = [json_line(record) for record in records]
    else:
        rows = [row(record) for record in records]
        lines = table(rows if widths else [HEADER, *rows], widths)
    print("\n".join(lines), flush=True)


def _watch(
    s3: S3Client,
    bucket: str,
    prefix: str,
    args: argparse.Namespace,
    *,
    first: list[ResultRecord],
    listed: list[StoredResult],
) -> int:
    """Print ``first`` (oldest first), then each record written since, until Ctrl-C."""
    seen_objects = {stored.key: stored.etag for stored in listed}
    seen_records = {_identity(record) for record in first}
    if not args.json:
        print(table([HEADER], WATCH_WIDTHS)[0], flush=True)
    _print(first, args.json, WATCH_WIDTHS)
    since = datetime.now(UTC) - WATCH_SLACK
    try:
        while True:
            time.sleep(args.interval)
            changed = [
                stored
                for stored in list_results(s3, bucket, prefix, since=since)
                if seen_objects.get(stored.key) != stored.etag
            ]
            seen_objects.update((stored.key, stored.etag) for stored in changed)
            new = []
            for fetched in fetch_all(s3, bucket, reversed(changed)):
                record = fetched.record
                if _usable(fetched) and record and _identity(record) not in seen_records:
                    seen_records.add(_identity(record))
                    new.append(record)
            _print(new, args.json, WATCH_WIDTHS)
    except KeyboardInterrupt:
        return EXIT_OK


def _identity(record: ResultRecord) -> tuple[str, str | None, str | None, str]:
    """One result: a record rewritten as published is the same one."""
    return (record.key, record.version_id, record.etag, record.processed_at)


def upload_key(text: str, bucket: str, result_prefix: str) -> str:
    """The upload's key from KEY, ``s3://BUCKET/KEY`` or the record's own key."""
    key = text
    if key.startswith("s3://"):
        named_bucket, _, key = key[len("s3://") :].partition("/")
        if named_bucket != bucket:
            raise NotFoundError(f"{text} is not in BUCKET_NAME ({bucket})")
    if key.startswith(result_prefix) and key.endswith(".json"):
        key = key[len(result_prefix) : -len(".json")]
    return key


def handle_show(args: argparse.Namespace) -> int:
    settings = start("bucket_name")
    s3 = make_client("s3")
    bucket = settings.bucket
    store = ResultStore(s3, bucket, settings.result_prefix)
    key = upload_key(args.key, bucket, settings.result_prefix)
    try:
        record = store.read(key)
    except NotFoundError:
        raise NotFoundError(
            f"no result for {key!r} yet (no s3://{bucket}/{store.key_for(key)}); "
            "`worker results` lists the recent ones"
        ) from None
    if args.annotate is not None:  # before any output: a failure is then its one line
        write_annotated(s3, record, args.annotate)
    print(json.dumps(record.to_json(), ensure_ascii=False, indent=2))
    print()
    print(f"E-mail subject: {subject(record)}")
    print("E-mail text:")
    print(email_text(record))
    if args.annotate is not None:
        drawn = len(record.matches)
        print()
        print(f"Picture: {args.annotate} ({drawn} matched face{'s' if drawn != 1 else ''} drawn)")
    return EXIT_OK


def write_annotated(s3: S3Client, record: ResultRecord, out: Path) -> None:
    """Download the record's upload (the version it was made from), draw, write ``out``."""
    from worker.annotate import annotate  # noqa: PLC0415 - Pillow drawing only when asked for

    location = f"s3://{record.bucket}/{record.key}"
    data = download_upload(s3, record)
    try:
        picture = annotate(data, record)
    except InvalidImageError as exc:
        raise WorkerError(f"cannot draw on {location}: {exc}") from exc
    try:
        out.write_bytes(picture)
    except OSError as exc:
        raise WorkerError(f"cannot write {out}: {exc.strerror or exc}") from exc


def download_upload(s3: S3Client, record: ResultRecord) -> bytes:
    """The upload's bytes, as the record saw them: its version, else the same ETag."""
    location = f"s3://{record.bucket}/{record.key}"
    which: dict[str, str] = {}
    if record.version_id:
        which["VersionId"] = record.version_id
    elif record.etag:
        which["IfMatch"] = f'"{record.etag}"'
    try:
        return s3.get_object(Bucket=record.bucket, Key=record.key, **which)["Body"].read()  # type: ignore[arg-type]
    except (ClientError, BotoCoreError) as exc:
        error = translate(exc)
        if isinstance(error, NotFoundError):
            raise NotFoundError(f"the upload {location} is gone: nothing to draw on") from exc
        if isinstance(error, ConditionFailedError):
            raise WorkerError(
                f"the upload {location} has changed since this result (ETag {record.etag}): "
                "its boxes would not fit; wait for the new result"
            ) from exc
        raise error from exc
