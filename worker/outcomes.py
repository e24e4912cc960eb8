"""What became of one SQS message: values the runner turns into batched SQS calls."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ack:
    """Done (or nothing to do): delete the message."""

    reason: str = "processed"


@dataclass(frozen=True)
class RetryLater:
    """Leave the message; make it visible again after ``delay`` seconds (``None``: backoff).

    ``error_type``: set when the cause is not a passing one (an upload Rekognition may not read,
    a refused permission): if it still fails at the message's last receive, the runner
    dead-letters it with this type and ``reason`` instead of leaving it to the redrive policy.
    """

    reason: str
    delay: float | None = None
    error_type: str | None = None


@dataclass(frozen=True)
class DeadLetter:
    """The message can never be processed: send it to the DLQ with a reason, then delete it.

    ``body``: what to dead-letter when it is not the message's own body (one record of it).
    """

    error_type: str
    error_message: str
    body: str | None = None


@dataclass(frozen=True)
class Resend:
    """One record of a split message, to go back on the queue as a message of its own."""

    body: str
    outcome: RetryLater


@dataclass(frozen=True)
class Partial:
    """A message of several S3 records, some of which can never be processed.

    ``dead_letters``: one per bad record, each with its own body. ``rest``: what became of the
    other records together (:func:`combine`). ``resends``: when ``rest`` is a RetryLater, each
    record that must be retried, with its own body. The runner dead-letters the bad records alone
    and, when some must be retried, *splits* the message rather than keeping it (a kept message
    would dead-letter its bad records again at every receive).
    """

    dead_letters: tuple[DeadLetter, ...]
    rest: Ack | RetryLater
    resends: tuple[Resend, ...] = field(default=())


Outcome = Ack | RetryLater | DeadLetter | Partial


def combine(outcomes: list[Outcome]) -> Ack | RetryLater:
    """One message naming several objects: retry if any must be retried, else done."""
    retries = [o for o in outcomes if isinstance(o, RetryLater)]
    if retries:
        delays = [o.delay for o in retries if o.delay is not None]
        kinds = [o.error_type for o in retries if o.error_type]
        return RetryLater(
            reason="; ".join(o.reason for o in retries),
            delay=max(delays) if delays else None,
            error_type=kinds[0] if kinds else None,
        )
    acks = sorted({o.reason for o in outcomes if isinstance(o, Ack)})
    return Ack(reason="; ".join(acks) or "nothing to do")


# Backoff for messages that failed for a passing reason: SQS makes them visible again after this.
RETRY_BASE_SECONDS = 5.0
RETRY_MAX_SECONDS = 900.0


def retry_delay(receive_count: int) -> float:
    """Exponential in the number of receives: 5 s, 10 s, 20 s, … capped at 15 minutes."""
    return float(min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(receive_count - 1, 0)))
