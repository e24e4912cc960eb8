"""Which AWS failures are worth another try, and how long to wait (tenacity).

:func:`translate` maps botocore's errors onto the worker's error tree (retryable or permanent)
for every adapter. botocore makes a single attempt for Rekognition (see :mod:`worker.aws.clients`);
:func:`with_retries` is the only retry layer for it, so the two never multiply.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
)
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from worker.aws.errors import translate
from worker.errors import (
    RetryableError,
)

T = TypeVar("T")

# Attempts per Rekognition call, first included, and the ceiling on the time spent retrying it.
MAX_ATTEMPTS = 8
MAX_RETRY_SECONDS = 60.0
# Backoff: full jitter, exponential from 0.2 s, each wait at most 10 s.
BACKOFF_MULTIPLIER = 0.2
BACKOFF_MAX_SECONDS = 10.0


class StopBeforeDeadline(stop_base):
    """Stop when the next attempt could not finish by ``deadline`` (``time.monotonic()``).

    ``attempt_seconds`` is the longest one attempt may take (the client's connect and read
    timeouts with a single botocore attempt), so the last attempt ends before the deadline too.
    """

    def __init__(self, deadline: float, attempt_seconds: float) -> None:
        self.deadline, self.attempt_seconds = deadline, attempt_seconds

    def __call__(self, retry_state: RetryCallState) -> bool:
        next_end = time.monotonic() + (retry_state.upcoming_sleep or 0.0) + self.attempt_seconds
        return next_end > self.deadline


def retrying(
    on_retry: Callable[[RetryCallState], None] | None = None,
    deadline: StopBeforeDeadline | None = None,
) -> Retrying:
    """The retry policy for one call: retryable errors only, jittered backoff, and at most
    :data:`MAX_ATTEMPTS` attempts, :data:`MAX_RETRY_SECONDS` or ``deadline``, whichever is first."""
    stop = stop_after_attempt(MAX_ATTEMPTS) | stop_after_delay(MAX_RETRY_SECONDS)
    return Retrying(
        retry=retry_if_exception_type(RetryableError),
        wait=wait_random_exponential(multiplier=BACKOFF_MULTIPLIER, max=BACKOFF_MAX_SECONDS),
        stop=stop if deadline is None else stop | deadline,
        before_sleep=on_retry,
        reraise=True,
    )


def with_retries(
    step: Callable[[], T],
    on_retry: Callable[[RetryCallState], None] | None = None,
    deadline: StopBeforeDeadline | None = None,
) -> T:
    """Run ``step`` under :func:`retrying`, botocore failures translated on the way."""
    if deadline is not None and time.monotonic() + deadline.attempt_seconds > deadline.deadline:
        raise RetryableError("no time left to try before the deadline")
    for attempt in retrying(on_retry, deadline):
        with attempt:
            try:
                return step()
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc) from exc
    raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover
