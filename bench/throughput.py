"""Throughput at the Rekognition quota, scaling over replicas, and the tutorial's loop side by side.

Everything runs on this machine: a moto server (S3, SQS, SNS; :mod:`bench.moto_server`, with
:mod:`worker.local.moto_speedups` unless ``--stock-moto``) and the Rekognition stand-in
(:mod:`bench.standin`), each in its own process, the contract's resources (bucket → notification →
queue with DLQ, topic → subscribed results queue), and 1 to 4 ``python -m worker run`` replicas.
The driver uploads N images, reads every notification from the subscribed queue and prints what
it measured, then a summary of the ratios against the goals of issue 15; it asserts nothing.
Usage::

    .venv/bin/python -m bench.throughput                     # every scenario, both quota shapes
    .venv/bin/python -m bench.throughput quota --limiter sliding
    # scenarios: quota, throttled, shared, scaling, tutorial; --limiter sliding|bucket (default both)

The stand-in's quota has two shapes (``--limiter``): ``bucket`` (a token bucket of one second's
worth of calls) and ``sliding`` (a strict one-second sliding window). Figures: uploads/s (first
upload → last notification), Rekognition calls/s (admitted by the stand-in, over the span of
admitted calls) against the quota, throttled calls (stand-in), retries and throttles (the
workers' own EMF metrics), calls failing after all retries (``upload_retry_later`` log lines),
lost uploads (no notification and no record) and duplicate notifications, p50/p95 of the records'
``duration_ms`` and of upload → notification time, RSS per replica (/proc, current and peak); for
the scaling runs, uploads per replica, the time between two uploads of one replica outside
``duration_ms`` and the CPU seconds of moto and the stand-in.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.integration.harness import Stack, WorkerProcess, client
from tests.support.squares import face_png

# Small images: the stand-in's pixel scan stays well under a millisecond per image.
IMAGE_SIZE = (64, 48)
COLOURS = [
    (r, g, b)
    for r in (40, 120, 200)
    for g in (40, 120, 200)
    for b in (40, 120, 200)
    if max(r, g, b) - min(r, g, b) >= 80
]
STRANGER = COLOURS[-1]  # never a reference (at most len(COLOURS) - 1 of them)
ROOT = Path(__file__).resolve().parent.parent
LIMITERS = ("sliding", "bucket")  # the stand-in's quota shapes (bench.standin)

# At the quota (issue 15): one replica with 16 threads and 3 calls per upload (DetectFaces, then
# CompareFaces with 2 references at once) wants far more than 12 calls/s, so the quota binds —
# below what this 2-core machine sustains with moto, the stand-in and the driver on it.
QUOTA_TPS = 12.0
QUOTA_CONCURRENCY = 16
QUOTA_REFERENCES = 2
QUOTA_LATENCY_S = 0.08
QUOTA_UPLOADS = 120
SHARED_REPLICAS = 4
# Scaling, waiting-bound: one upload in flight per replica and a slow service, so that the
# service's latency, not the CPU, sets each replica's pace.
SCALING_LATENCY_S = 0.4
SCALING_UPLOADS = 24  # per replica
SCALING_BACKLOG = 3  # fed runs: uploads waiting per replica
SCALING_PAIRS = 3  # the goal's pair (1, then 4 replicas) measured this many times: the median
# Scaling, CPU-bound: the same with a fast service, so that the CPU (2 cores for every process)
# sets the pace of 4 replicas.
CPU_LATENCY_S = 0.0
LATENCY_S = 0.15  # the tutorial comparison
RESULT_TIMEOUT_S = 180.0
PUT_THREADS = 4


# ---------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto(stack: ExitStack, *, stock: bool = False) -> tuple[str, int]:
    """moto's server in its own process (:mod:`bench.moto_server`: with the speed-ups of
    :mod:`worker.local.moto_speedups` unless ``stock``)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.moto_server", "-H", "127.0.0.1", "-p", str(port)]
        + (["--stock"] if stock else []),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack.callback(_stop, proc)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            return endpoint, proc.pid
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto server did not start")


def start_standin(stack: ExitStack, s3_endpoint: str, **options: Any) -> tuple[str, int]:
    args = [sys.executable, "-m", "bench.standin", "--s3", s3_endpoint]
    for name, value in options.items():
        if value is not None:
            args += [f"--{name.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    stack.callback(_stop, proc)
    assert proc.stdout is not None
    return proc.stdout.readline().strip(), proc.pid


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def control(endpoint: str, **body: Any) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{endpoint}/_control", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def rss_kb(pid: int) -> tuple[int, int]:
    """(current, peak) resident set size of a process, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------- measuring


@dataclass
class Run:
    name: str
    replicas: int
    uploads: int
    references: int
    concurrency: int
    client_tps: float | None
    quota: float | None
    strategy: str = "auto"
    latency_s: float = LATENCY_S
    limiter: str = "bucket"
    backlog: int | None = None
    elapsed_s: float = 0.0
    notifications: Counter[str] = field(default_factory=Counter)
    durations_ms: list[float] = field(default_factory=list)
    end_to_end_ms: list[float] = field(default_factory=list)
    standin: dict[str, Any] = field(default_factory=dict)
    emf: Counter[str] = field(default_factory=Counter)
    failed_after_retries: int = 0
    lost: int = 0
    rss: list[tuple[int, int]] = field(default_factory=list)
    per_replica: list[int] = field(default_factory=list)
    # Per replica, between two consecutive uploads: finish-to-finish time minus duration_ms.
    between_ms: list[float] = field(default_factory=list)
    # Per replica, when its last upload was processed (s after the first upload was made).
    finished_s: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Rekognition calls/s admitted by the stand-in."""
        admitted = int(self.standin["calls"].get("Admitted", 0))
        return admitted / (self.standin["admitted_span_s"] or 1.0)

    @property
    def quota_ratio(self) -> float:
        return self.rate / self.quota if self.quota else float("nan")

    @property
    def uploads_per_s(self) -> float:
        return self.uploads / self.elapsed_s

    @property
    def throttled(self) -> int:
        return int(self.standin["calls"].get("Throttled", 0))

    @property
    def throttled_pct(self) -> float:
        calls = self.throttled + int(self.standin["calls"].get("Admitted", 0))
        return 100.0 * self.throttled / max(calls, 1)

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.notifications.values() if n > 1)

    def report(self) -> str:
        feed = f", fed with at most {self.backlog} waiting" if self.backlog else ""
        admitted = self.standin["calls"].get("Admitted", 0)
        quota = (
            f"{self.quota_ratio:.2f} x quota {self.quota:g} ({self.limiter})"
            if self.quota
            else "no quota"
        )
        failed_pct = 100.0 * self.failed_after_retries / max(admitted, 1)
        rss = ", ".join(f"{cur // 1024}/{peak // 1024}" for cur, peak in self.rss)
        cap = f"REKOGNITION_MAX_TPS={self.client_tps:g}" if self.client_tps else "no client cap"
        lines = [
            f"[{self.name}] {self.replicas} replica(s), STRATEGY={self.strategy}, "
            f"CONCURRENCY={self.concurrency}, {cap}, "
            f"{self.uploads} uploads{feed}, {self.references} references, stand-in latency "
            f"{self.latency_s * 1000:.0f} ms",
            f"  uploads/s            {self.uploads_per_s:7.2f}   "
            f"({self.uploads} in {self.elapsed_s:.1f} s)",
            f"  Rekognition calls/s  {self.rate:7.2f}   ({quota}; {admitted} admitted, "
            f"most in any 1 s: {self.standin.get('max_in_1s', 0)})",
            f"  throttled calls      {self.throttled:7d}   ({self.throttled_pct:.2f} % of calls; "
            f"EMF: RekognitionThrottles {self.emf['RekognitionThrottles']}, "
            f"RekognitionRetries {self.emf['RekognitionRetries']}, "
            f"RekognitionCalls {self.emf['RekognitionCalls']})",
            f"  failed after retries {self.failed_after_retries:7d}   ({failed_pct:.2f} % of calls)",
            f"  lost / duplicates    {self.lost:7d} / {self.duplicates}",
            f"  latency duration_ms  p50 {pct(self.durations_ms, 50):6.0f}  "
            f"p95 {pct(self.durations_ms, 95):6.0f} ms",
            f"  upload→notification  p50 {pct(self.end_to_end_ms, 50):6.0f}  "
            f"p95 {pct(self.end_to_end_ms, 95):6.0f} ms",
            f"  RSS per replica MB   {rss}  (current/peak)",
        ]
        if self.replicas > 1 or self.between_ms:
            lines.append(
                f"  uploads per replica  {'/'.join(map(str, self.per_replica))}; between two "
                f"uploads of a replica, outside duration_ms: p50 {pct(self.between_ms, 50):.0f}"
                f"  p95 {pct(self.between_ms, 95):.0f} ms"
            )
        if self.replicas > 1 and self.finished_s:
            mean = statistics.fmean(self.finished_s)
            lines.append(
                "  replicas done at     "
                + "/".join(f"{t:.2f}" for t in self.finished_s)
                + f" s (the last {max(self.finished_s) - mean:.2f} s after their mean)"
            )
        if self.cpu:
            lines.append(
                "  CPU s during the run "
                + ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.cpu.items())
            )
        return "\n".join(lines)


def pct(values: list[float], p: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def sns_time(envelope: dict[str, Any]) -> float:
    return datetime.fromisoformat(envelope["Timestamp"].replace("Z", "+00:00")).timestamp()


def seed_references(stack: Stack, count: int) -> None:
    for i in range(count):
        stack.put(f"references/person{i:02d}.png", face_png(COLOURS[i], size=IMAGE_SIZE))


def upload_image(i: int, references: int) -> bytes:
    """Every other upload shows a reference's face, the rest a stranger's (no match)."""
    colour = COLOURS[i % references] if i % 2 == 0 else STRANGER
    return face_png(colour, size=IMAGE_SIZE)


def collect(stack: Stack, run: Run, put_times: dict[str, float], expected: int) -> float:
    """Read notifications until every upload has one; return when the last one was published."""
    last = 0.0
    deadline = time.monotonic() + RESULT_TIMEOUT_S
    while len(run.notifications) < expected and time.monotonic() < deadline:
        response = stack.sqs.receive_message(
            QueueUrl=stack.results_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        messages = response.get("Messages", [])
        if messages:
            stack.sqs.delete_message_batch(
                QueueUrl=stack.results_queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        for message in messages:
            envelope = json.loads(message["Body"])
            record = json.loads(envelope["Message"])
            key = record["key"]
            run.notifications[key] += 1
            if run.notifications[key] == 1:
                published = sns_time(envelope)
                last = max(last, published)
                run.durations_ms.append(record["duration_ms"])
                if key in put_times:
                    run.end_to_end_ms.append((published - put_times[key]) * 1000)
    return last


def late_duplicates(stack: Stack, run: Run, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        response = stack.sqs.receive_message(
            QueueUrl=stack.results_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        for message in response.get("Messages", []):
            record = json.loads(json.loads(message["Body"])["Message"])
            run.notifications[record["key"]] += 1
            stack.sqs.delete_message(
                QueueUrl=stack.results_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )


def run_workers(
    moto: tuple[str, int],
    name: str,
    *,
    replicas: int,
    uploads: int,
    references: int,
    concurrency: int,
    client_tps: float | None,
    quota: float | None,
    workdir: Path,
    spaced_s: float = 0.0,
    strategy: str = "auto",
    latency_s: float = LATENCY_S,
    limiter: str = "bucket",
    poll_wait_s: int = 1,
    backlog: int | None = None,
) -> Run:
    endpoint, moto_pid = moto
    run = Run(
        name,
        replicas,
        uploads,
        references,
        concurrency,
        client_tps,
        quota,
        strategy,
        latency_s,
        limiter if quota else "-",
        backlog,
    )
    with ExitStack() as stack_:
        standin, standin_pid = start_standin(
            stack_, endpoint, latency=latency_s, quota=quota, limiter=limiter
        )
        stack = Stack.create(endpoint)
        seed_references(stack, references)
        settings = {
            "CONCURRENCY": str(concurrency),
            "VISIBILITY_TIMEOUT_SECONDS": "30",
            "STRATEGY": strategy,
            "POLL_WAIT_SECONDS": str(poll_wait_s),
        }
        if client_tps:
            settings["REKOGNITION_MAX_TPS"] = f"{client_tps:g}"
        workers = []
        for index in range(replicas):
            env = stack.env(
                standin, HEALTH_FILE=str(workdir / f"{name}-{index}.health"), **settings
            )
            worker = WorkerProcess(env, workdir / f"{name}-{index}.log")
            stack_.callback(worker.kill)
            workers.append(worker)
        for worker in workers:
            worker.wait_for_log("worker_started", timeout=30)
        # Drain the notification of the bucket configuration (s3:TestEvent) and warm up.
        time.sleep(1.5)
        control(standin, reset=True)

        keys = [f"uploads/{name}/{i:04d}.png" for i in range(uploads)]
        bodies = {key: upload_image(i, references) for i, key in enumerate(keys)}
        put_times: dict[str, float] = {}

        def put(key: str) -> None:
            stack.put(key, bodies[key])
            put_times[key] = time.time()

        pids = {"moto": moto_pid, "stand-in": standin_pid}
        pids.update({f"worker{i}": w.proc.pid for i, w in enumerate(workers)})
        cpu_before = {name_: cpu_s(pid) for name_, pid in pids.items()}
        start = time.time()
        if spaced_s:
            for key in keys:  # one at a time: unloaded latency
                put(key)
                collect(stack, run, put_times, len(run.notifications) + 1)
                time.sleep(spaced_s)
            last = max(put_times.values())
        elif backlog:  # one at a time, never more than `backlog` uploads without a notification

            def feed() -> None:
                for key in keys:
                    while len(put_times) - len(run.notifications) >= backlog:
                        time.sleep(0.002)
                    put(key)

            putter = threading.Thread(target=feed, daemon=True)
            putter.start()
            last = collect(stack, run, put_times, uploads)
            putter.join()
        else:
            pool = ThreadPoolExecutor(PUT_THREADS)
            putter = threading.Thread(target=lambda: list(pool.map(put, keys)), daemon=True)
            putter.start()
            last = collect(stack, run, put_times, uploads)
            putter.join()
        run.elapsed_s = max(last - start, 1e-3)
        run.cpu = {name_: cpu_s(pid) - cpu_before[name_] for name_, pid in pids.items()}
        run.standin = control(standin)
        late_duplicates(stack, run, 2.0)
        for key in keys:
            if key not in run.notifications:
                try:
                    stack.record(key)
                except stack.s3.exceptions.NoSuchKey:
                    run.lost += 1
        for worker in workers:
            run.rss.append(rss_kb(worker.proc.pid))
        for worker in workers:
            worker.terminate()
            for line in worker.events("emf_metrics"):
                for metric in ("RekognitionCalls", "RekognitionThrottles", "RekognitionRetries"):
                    run.emf[metric] += int(line.get(metric, 0))
            run.failed_after_retries += len(worker.events("upload_retry_later"))
            processed = worker.events("upload_processed")
            run.per_replica.append(len(processed))
            if concurrency == 1:
                finished = [
                    (datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp(), e)
                    for e in processed
                ]
                for (t0, _), (t1, e1) in itertools.pairwise(finished):
                    run.between_ms.append((t1 - t0) * 1000 - float(e1["duration_ms"]))
                if finished:
                    run.finished_s.append(finished[-1][0] - start)
    return run


def tutorial_loop(moto: str, references: int, uploads: int) -> list[float]:
    """The classic Lambda: list the references, CompareFaces one by one, one email per match."""
    latencies: list[float] = []
    with ExitStack() as stack_:
        standin, _ = start_standin(stack_, moto, latency=LATENCY_S, quota=None)
        stack = Stack.create(moto)
        seed_references(stack, references)
        s3, sns = client("s3", moto), client("sns", moto)
        rekognition = client("rekognition", standin)
        topic = sns.create_topic(Name=f"{stack.bucket}-tutorial")["TopicArn"]
        for i in range(uploads):
            key = f"tutorial/{i:04d}.png"  # outside uploads/: no notification to the worker
            s3.put_object(Bucket=stack.bucket, Key=key, Body=upload_image(i, references))
            started = time.perf_counter()
            listing = s3.list_objects_v2(Bucket=stack.bucket, Prefix="references/")
            for obj in listing.get("Contents", []):
                response = rekognition.compare_faces(
                    SourceImage={"S3Object": {"Bucket": stack.bucket, "Name": obj["Key"]}},
                    TargetImage={"S3Object": {"Bucket": stack.bucket, "Name": key}},
                    SimilarityThreshold=80,
                )
                for match in response["FaceMatches"]:
                    sns.publish(
                        TopicArn=topic,
                        Subject=f"Match: {obj['Key']}",
                        Message=f"{obj['Key']} matched {key} ({match['Similarity']:.1f} %)",
                    )
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


# ---------------------------------------------------------------------- scenarios


@dataclass
class Bench:
    """What every scenario shares, and the summary lines it adds (goal, measured, met)."""

    moto: tuple[str, int]
    workdir: Path
    limiters: tuple[str, ...]
    summary: list[tuple[str, str, bool | None]] = field(default_factory=list)  # None: no goal

    def quota_run(self, name: str, limiter: str, **options: Any) -> Run:
        defaults: dict[str, Any] = {
            "replicas": 1,
            "uploads": QUOTA_UPLOADS,
            "references": QUOTA_REFERENCES,
            "strategy": "compare",
            "concurrency": QUOTA_CONCURRENCY,
            "client_tps": QUOTA_TPS,
            "quota": QUOTA_TPS,
            "latency_s": QUOTA_LATENCY_S,
        }
        run = run_workers(
            self.moto, f"{name}-{limiter}", workdir=self.workdir, limiter=limiter,
            **{**defaults, **options},
        )  # fmt: skip
        print(run.report(), flush=True)
        return run

    def at_quota(self, goal: str, run: Run, at_least: float) -> None:
        self.summary.append(
            (
                f"{goal}, {run.limiter} quota: ≥ {at_least:g} x quota, throttled < 1 %, "
                "0 lost, 0 duplicates",
                f"{run.quota_ratio:.2f} x ({run.rate:.2f} calls/s), throttled "
                f"{run.throttled_pct:.2f} % ({run.throttled}), lost {run.lost}, "
                f"duplicates {run.duplicates}",
                run.quota_ratio >= at_least
                and run.throttled_pct < 1.0
                and run.lost == 0
                and run.duplicates == 0,
            )
        )


def scenario_quota(bench: Bench) -> None:
    """One replica, REKOGNITION_MAX_TPS = the quota."""
    for limiter in bench.limiters:
        bench.at_quota("1 replica at the quota", bench.quota_run("quota", limiter), 0.95)


def scenario_throttled(bench: Bench) -> None:
    """One replica, no REKOGNITION_MAX_TPS: the service's throttling and botocore's adaptive
    mode are the only brakes (throttled answers are expected here; the goal is the rate)."""
    for limiter in bench.limiters:
        run = bench.quota_run("throttled", limiter, client_tps=None)
        bench.summary.append(
            (
                f"1 replica, no REKOGNITION_MAX_TPS, {limiter} quota: ≥ 0.9 x quota, "
                "0 lost, 0 duplicates",
                f"{run.quota_ratio:.2f} x ({run.rate:.2f} calls/s), throttled "
                f"{run.throttled_pct:.2f} % ({run.throttled}), lost {run.lost}, "
                f"duplicates {run.duplicates}",
                run.quota_ratio >= 0.9 and run.lost == 0 and run.duplicates == 0,
            )
        )


def scenario_shared(bench: Bench) -> None:
    """4 replicas sharing the quota, each with REKOGNITION_MAX_TPS = quota ÷ 4."""
    for limiter in bench.limiters:
        run = bench.quota_run(
            "shared", limiter, replicas=SHARED_REPLICAS, client_tps=QUOTA_TPS / SHARED_REPLICAS
        )
        bench.at_quota(f"{SHARED_REPLICAS} replicas sharing the quota", run, 0.95)


def scenario_scaling(bench: Bench) -> None:
    """Replicas without a quota: waiting-bound (400 ms calls) and CPU-bound (no latency), with
    every upload made at once (as issue 15 measured it) and fed with a short backlog. The goal's
    pair (waiting-bound, at once: 1 then 4 replicas) is measured ``SCALING_PAIRS`` times and
    judged by the median of its ratios.

    Fed: moto's ReceiveMessage and DeleteMessage still walk the whole queue (the rest of its
    cost per message waiting is gone: :mod:`worker.local.moto_speedups`), so uploads made all at
    once cost every replica a little more per receive the more replicas there are (24 messages
    deep for one, 96 for four); fed with ``SCALING_BACKLOG`` per replica waiting, the queue stays
    shallow, as its depth costs nothing on SQS.
    """
    for kind, latency_s, per_replica, counts, backlog in (
        ("waiting-bound", SCALING_LATENCY_S, SCALING_UPLOADS, (1, 2, 4), None),
        ("waiting-bound, fed", SCALING_LATENCY_S, SCALING_UPLOADS, (1, 4), SCALING_BACKLOG),
        ("CPU-bound, fed", CPU_LATENCY_S, SCALING_UPLOADS * 2, (1, 4), SCALING_BACKLOG),
    ):
        goal = kind == "waiting-bound"
        # The goal's pair is measured SCALING_PAIRS times (1 then 4 replicas, side by side): four
        # replicas vary by a few % from run to run on this machine, one replica far less.
        pairs = [counts] + [(1, 4)] * (SCALING_PAIRS - 1 if goal else 0)
        measured: list[dict[int, float]] = []
        for pair in pairs:
            rates = {}
            for replicas in pair:
                run = run_workers(
                    bench.moto,
                    f"scale-{kind.replace(', ', '-')}-{replicas}-{len(measured)}",
                    replicas=replicas,
                    uploads=per_replica * replicas,
                    references=QUOTA_REFERENCES,
                    strategy="compare",
                    concurrency=1,
                    client_tps=None,
                    quota=None,
                    workdir=bench.workdir,
                    latency_s=latency_s,
                    backlog=backlog * replicas if backlog else None,
                )
                print(run.report(), flush=True)
                rates[replicas] = run.uploads_per_s
            ratios = ", ".join(f"{n} replicas {rates[n] / rates[1]:.2f} x" for n in pair[1:])
            print(f"  scaling ({kind}): {ratios} one replica", flush=True)
            measured.append(rates)
        ratio = statistics.median(rates[4] / rates[1] for rates in measured)
        figures = " → ".join(f"{measured[0][n]:.2f}" for n in counts)
        each = (
            f"; median of {len(measured)} pairs: "
            + ", ".join(f"{rates[4] / rates[1]:.2f}" for rates in measured)
            if len(measured) > 1
            else ""
        )
        bench.summary.append(
            (
                f"scaling, {kind} ({latency_s * 1000:.0f} ms, CONCURRENCY=1, "
                f"{per_replica} uploads per replica)"
                + (": 4 replicas ≥ 3.8 x one" if goal else ", 4 replicas against one"),
                f"{ratio:.3f} x ({figures} uploads/s for {'/'.join(map(str, counts))} "
                f"replicas{each})",
                ratio >= 3.8 if goal else None,
            )
        )


def scenario_tutorial(bench: Bench) -> None:
    references, uploads = 20, 10
    runs = [
        run_workers(
            bench.moto,
            f"latency20-{strategy}",
            replicas=1,
            uploads=uploads,
            references=references,
            concurrency=8,
            client_tps=None,
            quota=None,
            workdir=bench.workdir,
            spaced_s=0.2,
            strategy=strategy,
        )
        for strategy in ("auto", "compare")
    ]
    for run in runs:
        print(run.report(), flush=True)
    loop = tutorial_loop(bench.moto[0], references, uploads)
    print(
        f"[tutorial] sequential CompareFaces over {references} listed references, "
        f"{uploads} uploads one at a time",
        flush=True,
    )
    print(f"  per-upload latency   p50 {pct(loop, 50):6.0f}  p95 {pct(loop, 95):6.0f} ms")
    for run in runs:
        ratio = pct(loop, 50) / pct(run.durations_ms, 50)
        print(
            f"  ratio tutorial/worker STRATEGY={run.strategy} (p50): "
            f"{ratio:.1f} x by duration_ms, "
            f"{pct(loop, 50) / pct(run.end_to_end_ms, 50):.1f} x by upload→notification",
            flush=True,
        )
        if run.strategy == "auto":
            bench.summary.append(
                (
                    f"one upload at {references} references (STRATEGY=auto, duration_ms p50): "
                    "≥ 10 x faster than the tutorial's loop",
                    f"{ratio:.1f} x ({pct(loop, 50):.0f} ms against "
                    f"{pct(run.durations_ms, 50):.0f} ms)",
                    ratio >= 10,
                )
            )


SCENARIOS: dict[str, Callable[[Bench], None]] = {
    "quota": scenario_quota,
    "throttled": scenario_throttled,
    "shared": scenario_shared,
    "scaling": scenario_scaling,
    "tutorial": scenario_tutorial,
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", choices=[[], *SCENARIOS], metavar="scenario")
    parser.add_argument(
        "--limiter",
        choices=LIMITERS,
        action="append",
        help="the stand-in's quota shape (repeatable; default: both, side by side)",
    )
    parser.add_argument(
        "--stock-moto",
        action="store_true",
        help="moto's server as released, without worker.local.moto_speedups",
    )
    args = parser.parse_args(argv)
    chosen = args.scenarios or list(SCENARIOS)
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"moto {'as released' if args.stock_moto else 'with worker.local.moto_speedups'}",
        flush=True,
    )
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        bench = Bench(
            start_moto(stack, stock=args.stock_moto), Path(tmp), tuple(args.limiter or LIMITERS)
        )
        for name in chosen:
            SCENARIOS[name](bench)
    print("\nsummary (issue 15 goals)")
    for goal, measured, met in bench.summary:
        verdict = "shown" if met is None else "met" if met else "SHORT"
        print(f"  [{verdict}] {goal}\n         {measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
