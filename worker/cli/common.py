"""What every verb shares: exit codes, settings + logging start-up, export lines."""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from worker import logs
from worker.settings import Settings, load_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def start(*required: str) -> Settings:
    """Load settings (exit 2 via ConfigError when bad), configure logging, check ``required``."""
    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    return settings.require(*required)


def export_lines(pairs: Iterable[tuple[str, str]]) -> str:
    """``export NAME=value`` lines, values shell-quoted, for ``eval "$(worker …)"``."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in pairs)
