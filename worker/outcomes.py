"""What became of one SQS message: values the runner turns into batched SQS calls."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ack:
    """Done (or nothing to do): delete the message."""

    reason: str = "processed"


@dataclass(frozen=True)
class RetryLater:
    """Leave the message; make it visible again after ``delay`` seconds (``None``: backoff)."""

    reason: str
    delay: float | None = None


@dataclass(frozen=True)
class DeadLetter:
    """The message can never be processed: send it to the DLQ with a reason, then delete it."""

    error_type: str
    error_message: str


Outcome = Ack | RetryLater | DeadLetter


def combine(outcomes: list[Outcome]) -> Outcome:
    """One message naming several objects: retry if any must be retried, else done."""
    retries = [o for o in outcomes if isinstance(o, RetryLater)]
    if retries:
        delays = [o.delay for o in retries if o.delay is not None]
        return RetryLater(
            reason="; ".join(o.reason for o in retries), delay=max(delays) if delays else None
        )
    acks = sorted({o.reason for o in outcomes if isinstance(o, Ack)})
    return Ack(reason="; ".join(acks) or "nothing to do")


# Backoff for messages that failed for a passing reason: SQS makes them visible again after this.
RETRY_BASE_SECONDS = 5.0
RETRY_MAX_SECONDS = 900.0


def retry_delay(receive_count: int) -> float:
    """Exponential in the number of receives: 5 s, 10 s, 20 s, … capped at 15 minutes."""
    return float(min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(receive_count - 1, 0)))
