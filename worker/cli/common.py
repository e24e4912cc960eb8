"""What every verb shares: exit codes, settings + logging start-up, export lines."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterable

from worker.settings import Settings, load_settings
from worker.telemetry import logs

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def start(*required: str, log_level: str = "WARNING") -> Settings:
    """Load settings (exit 2 via ConfigError when bad), configure logging, check ``required``.

    ``log_level`` is the verb's default when LOG_LEVEL is unset: WARNING keeps a one-shot verb's
    terminal to its output; the servers (`run`, `embedded`) pass INFO.
    """
    settings = load_settings()
    logs.configure(settings.log_level or log_level, settings.log_format)
    return settings.require(*required)


def export_lines(pairs: Iterable[tuple[str, str]]) -> str:
    """``export NAME=value`` lines, values shell-quoted, for ``eval "$(worker …)"``."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in pairs)


def positive_int(text: str) -> int:
    """argparse type: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def printable(text: str) -> str:
    """``text`` on one line: tabs, line breaks and other invisible characters escaped."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )
