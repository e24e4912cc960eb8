"""`worker demo` — not built yet (see the issue that owns it)."""

from __future__ import annotations

import argparse
from typing import Any

from worker.cli.common import EXIT_FAILED


def register(sub: Any) -> None:
    parser = sub.add_parser("demo", help="(not built yet)", description="Not built yet.")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    print("worker demo: not built yet")
    return EXIT_FAILED
