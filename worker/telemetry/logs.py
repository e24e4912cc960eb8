"""structlog set-up: one processor chain, always to stderr: console lines when stderr is a terminal,
JSON lines otherwise (structlog's own convention); ``LOG_FORMAT=json|console`` chooses.

Context such as message id, bucket and key is bound with ``structlog.contextvars`` so that every
line written while a message is in work carries it. botocore's and urllib3's stdlib logging goes
through the same renderer.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from worker.settings import LogFormat


def configure(level: str | None = "INFO", fmt: LogFormat | str = LogFormat.AUTO) -> None:
    """Configure structlog and stdlib logging once, at start-up (level None: INFO)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Any
    if console(LogFormat(fmt)):
        renderer = structlog.dev.ConsoleRenderer(colors=_is_terminal(sys.stderr))
    else:
        renderer = structlog.processors.JSONRenderer()
    numeric = logging.getLevelName((level or "INFO").upper())

    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # Third-party chatter stays quiet unless asked for.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug", "PIL"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))


def console(fmt: LogFormat, stream: TextIO | None = None) -> bool:
    """Console lines for ``fmt`` on ``stream`` (stderr): ``auto`` means "when it is a terminal"."""
    if fmt is LogFormat.AUTO:
        return _is_terminal(sys.stderr if stream is None else stream)
    return fmt is LogFormat.CONSOLE


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced by something stream-like, or closed
        return False


def get_logger(name: str | None = None) -> Any:
    return structlog.stdlib.get_logger(name)
