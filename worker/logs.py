"""structlog set-up: one processor chain, JSON lines by default, console for humans, always stderr.

Context such as message id, bucket and key is bound with ``structlog.contextvars`` so that every
line written while a message is in work carries it. botocore's and urllib3's stdlib logging goes
through the same renderer.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from worker.settings import LogFormat


def configure(level: str = "INFO", fmt: LogFormat | str = LogFormat.JSON) -> None:
    """Configure structlog and stdlib logging once, at start-up."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Any
    if LogFormat(fmt) is LogFormat.CONSOLE:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    numeric = logging.getLevelName(level.upper())

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


def get_logger(name: str | None = None) -> Any:
    return structlog.stdlib.get_logger(name)
