"""The Rekognition limiter's logic on a fake clock (what a strict one-second window would admit),
and how the adapter feeds it."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.aws import retry
from worker.recognition.client import Rekognition
from worker.recognition.ratelimit import MARGIN_SECONDS, PROBE_SECONDS, QuotaLimiter, Slot


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.lock = threading.Lock()

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def limiter(clock: FakeClock, rate: float | None, **options: float) -> QuotaLimiter:
    return QuotaLimiter(rate, clock=clock.time, sleep=clock.sleep, **options)


def most_in_any_second(times: list[float], window: float = 1.0) -> int:
    """The most calls a strict sliding window (t - window, t] would have seen."""
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - window:
            first += 1
        most = max(most, last - first + 1)
    return most


def run(
    quota: QuotaLimiter, clock: FakeClock, pauses: list[float], send_delays: list[float]
) -> list[Slot]:
    """One call after another: a pause before asking, a delay between the turn and the send."""
    slots = []
    for pause, delay in zip(pauses, send_delays, strict=True):
        clock.now += pause
        slot = quota.acquire()
        clock.now += delay
        quota.sent(slot)
        slots.append(slot)
    return slots


@settings(max_examples=200, deadline=None)
@given(
    rate=st.integers(min_value=1, max_value=50),
    calls=st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.0, 0.0, 0.001, 0.05, 0.3, 1.5]),
            st.floats(min_value=0.0, max_value=0.03),
        ),
        min_size=1,
        max_size=150,
    ),
)
def test_never_more_than_the_rate_in_any_second(
    rate: int, calls: list[tuple[float, float]]
) -> None:
    clock = FakeClock()
    quota = limiter(clock, rate)
    slots = run(quota, clock, [p for p, _ in calls], [d for _, d in calls])
    # The margin as well: a call may reach the service that much later than the one N before.
    assert most_in_any_second([s.at for s in slots], 1.0 + MARGIN_SECONDS - 1e-9) <= rate


def test_a_window_counts_from_when_the_call_left() -> None:
    clock = FakeClock()
    quota = limiter(clock, 2)
    first = quota.acquire()
    clock.now += 0.3  # botocore took its time: the call left 0.3 s after its turn
    quota.sent(first)
    quota.acquire()
    third = quota.acquire()
    assert third.at == pytest.approx(first.at + 1.0 + MARGIN_SECONDS)


def test_calls_are_spaced_never_sent_in_a_burst() -> None:
    clock = FakeClock()
    quota = limiter(clock, 10)
    slots = run(quota, clock, [0.0] * 30, [0.0] * 30)
    gaps = [b.at - a.at for a, b in itertools.pairwise(slots)]
    assert min(gaps) == pytest.approx((1.0 + MARGIN_SECONDS) / 10)


def test_saturated_it_keeps_to_the_rate_less_the_margin() -> None:
    clock = FakeClock()
    quota = limiter(clock, 12)
    slots = run(quota, clock, [0.0] * 361, [0.002] * 361)
    rate = 360 / (slots[-1].at - slots[0].at)
    assert 12 / (1.0 + MARGIN_SECONDS + 0.002) <= rate + 1e-6 <= 12


@pytest.mark.parametrize(("rate", "most"), [(0.5, 1), (2.5, 3)])
def test_fractional_rates_keep_their_average(rate: float, most: int) -> None:
    clock = FakeClock()
    quota = limiter(clock, rate, margin=0.0)
    slots = run(quota, clock, [0.0] * 41, [0.0] * 41)
    assert 40 / (slots[-1].at - slots[0].at) == pytest.approx(rate)
    assert most_in_any_second([s.at for s in slots]) <= most


def test_threads_take_turns_within_the_window() -> None:
    clock = FakeClock()
    quota = limiter(clock, 5)
    slots: list[Slot] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            slot = quota.acquire()
            quota.sent(slot)
            with lock:
                slots.append(slot)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(slots) == 80
    assert most_in_any_second([s.at for s in slots]) <= 5


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan")])
def test_rate_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="positive and finite"):
        QuotaLimiter(bad)


# ------------------------------------------------------------------ learned (no REKOGNITION_MAX_TPS)


def test_unset_no_limit_until_the_service_throttles() -> None:
    clock = FakeClock()
    quota = limiter(clock, None)
    slots = run(quota, clock, [0.001] * 50, [0.0] * 50)
    assert quota.limit is None
    assert slots[-1].at - slots[0].at == pytest.approx(0.049)


def test_the_first_throttle_teaches_the_quota() -> None:
    clock = FakeClock()
    quota = limiter(clock, None, probe_seconds=60.0)
    slots = run(quota, clock, [0.01] * 16, [0.0] * 16)
    # A strict window of 12: the 13th call and those after it are refused.
    assert quota.throttled(slots[12]) == 12
    for slot in slots[13:]:  # left under the old limit: they teach nothing more
        assert quota.throttled(slot) is None
    assert quota.limit == 12
    later = run(quota, clock, [0.0] * 60, [0.003] * 60)
    assert most_in_any_second([s.at for s in slots[:12] + later]) <= 12


def test_a_throttle_with_nothing_of_ours_admitted_teaches_nothing() -> None:
    clock = FakeClock()
    quota = limiter(clock, None)
    slot = quota.acquire()
    assert quota.throttled(slot) is None
    assert quota.limit is None


def test_the_learned_limit_grows_only_while_it_holds_calls_back() -> None:
    clock = FakeClock()
    quota = limiter(clock, None)
    slots = run(quota, clock, [0.01] * 6, [0.0] * 6)
    quota.throttled(slots[5])
    assert quota.limit == 5
    # Calls now and then, never held back: no reason to ask for more.
    run(quota, clock, [1.0] * (int(PROBE_SECONDS) * 2), [0.0] * (int(PROBE_SECONDS) * 2))
    assert quota.limit == 5
    # Calls held back for a probe period: one more per second.
    run(quota, clock, [0.0] * int(PROBE_SECONDS * 6), [0.0] * int(PROBE_SECONDS * 6))
    assert quota.limit == 6
    # A throttle at the new limit with fewer admitted lowers it again.
    slots = run(quota, clock, [0.0] * 6, [0.0] * 6)
    assert quota.throttled(slots[-1]) == 5


def test_after_a_storm_the_limit_climbs_halfway_back_at_each_probe() -> None:
    clock = FakeClock()
    quota = limiter(clock, None)
    slots = run(quota, clock, [0.01] * 13, [0.0] * 13)
    assert quota.throttled(slots[12]) == 12
    clock.now += 2.0  # a storm: the service admits 3 calls in a second, then refuses
    slots = run(quota, clock, [0.2] * 4, [0.0] * 4)
    assert quota.throttled(slots[3]) == 3
    limits = [quota.limit]
    while len(limits) < 6:  # saturated: every probe period, a new limit
        run(quota, clock, [0.0], [0.0])
        if quota.limit != limits[-1]:
            limits.append(quota.limit)
    assert limits == [3, 8, 10, 11, 12, 13]


def test_a_fixed_rate_is_never_relearned() -> None:
    clock = FakeClock()
    quota = limiter(clock, 12)
    slots = run(quota, clock, [0.0] * 3, [0.0] * 3)
    assert quota.throttled(slots[-1]) is None
    assert quota.limit == 12


# ------------------------------------------------------------------ the adapter's use of it


def test_the_adapter_counts_a_call_from_its_send_and_reports_throttles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(retry, "BACKOFF_MULTIPLIER", 0.0)
    seen: list[str] = []
    monkeypatch.setattr(QuotaLimiter, "sent", lambda self, slot: seen.append("sent"))
    monkeypatch.setattr(QuotaLimiter, "throttled", lambda self, slot: seen.append("throttled"))
    one_attempt = Config(retries={"mode": "standard", "total_max_attempts": 1})
    client = boto3.client("rekognition", region_name="us-east-1", config=one_attempt)
    answers = [(400, {"__type": "ThrottlingException", "Message": "Rate exceeded"})]
    answers.append((200, {"FaceDetails": []}))

    def answer(request: AWSPreparedRequest, **_: object) -> AWSResponse:
        status, body = answers.pop(0)
        return AWSResponse(request.url, status, {}, _Raw(json.dumps(body).encode()))

    client.meta.events.register("before-send.rekognition", answer)
    assert Rekognition(client, max_tps=5).detect_faces({"Bytes": b"x"}) == []
    assert seen == ["sent", "throttled", "sent"]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self._body
