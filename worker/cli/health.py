"""`worker health` — the container health check: is the poll loop still receiving?"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from worker.cli.common import EXIT_FAILED, EXIT_OK
from worker.settings import load_settings

# `worker run` touches the file after every receive that succeeded (at least once per long poll,
# ≤ 20 s) and every second while every slot is busy; a failing receive takes up to the 35 s read
# timeout before the next try.
DEFAULT_MAX_AGE_SECONDS = 90.0


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "health",
        help="exit 0 when the local `worker run` is receiving from its queue (container health check)",
        description=(
            "Checks the heartbeat file of `worker run` (HEALTH_FILE, default "
            "/tmp/face-match-worker.heartbeat), which it touches at start, after every receive "
            "from QUEUE_URL that succeeded (at least once per POLL_WAIT_SECONDS when idle) and "
            "every second while all its CONCURRENCY slots are busy — never after a failed "
            "receive. Exit 0 when the file is fresh; 1 when it is missing or older than "
            "--max-age seconds: the loop is stuck or dead, or receives have been failing that "
            "long (queue deleted, credentials expired or revoked, SQS unreachable: see the "
            "worker's receive_failed log lines). Reads no AWS."
        ),
    )
    parser.add_argument(
        "--max-age",
        type=float,
        default=DEFAULT_MAX_AGE_SECONDS,
        help=f"seconds after which the heartbeat counts as stale (default {DEFAULT_MAX_AGE_SECONDS:g})",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    path = load_settings().health_file
    if not path:
        print("unhealthy: HEALTH_FILE is empty, nothing to check", file=sys.stderr)
        return EXIT_FAILED
    try:
        age = time.time() - Path(path).stat().st_mtime
    except OSError:
        print(f"unhealthy: no heartbeat at {path}", file=sys.stderr)
        return EXIT_FAILED
    if age > args.max_age:
        print(
            f"unhealthy: last heartbeat {age:.0f} s ago (limit {args.max_age:g} s)", file=sys.stderr
        )
        return EXIT_FAILED
    print(f"healthy: last heartbeat {age:.1f} s ago")
    return EXIT_OK
