"""Throughput at the Rekognition quota, scaling over replicas, and the tutorial's loop side by side.

Everything runs on this machine: a moto server (S3, SQS, SNS) and the Rekognition stand-in
(:mod:`bench.standin`), each in its own process, the contract's resources (bucket → notification →
queue with DLQ, topic → subscribed results queue), and 1, 2 or 4 ``python -m worker run``
replicas. The driver uploads N images, reads every notification from the subscribed queue and
prints what it measured; it asserts nothing. Usage::

    .venv/bin/python -m bench.throughput            # every scenario (about 5 minutes)
    .venv/bin/python -m bench.throughput quota      # one of: quota, throttled, scaling, tutorial

Figures: uploads/s (first upload → last notification), Rekognition calls/s (admitted by the
stand-in, over the span of admitted calls) against the quota, throttled calls (stand-in), retries
and throttles (the workers' own EMF metrics), calls failing after all retries (``upload_retry_later``
log lines), lost uploads (no notification and no record) and duplicate notifications, p50/p95 of the
records' ``duration_ms`` and of upload → notification time, RSS per replica (/proc, current and peak).
"""

from __future__ import annotations

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

from tests.fakes.rekognition import face_png
from tests.integration.harness import Stack, WorkerProcess, client

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
LATENCY_S = 0.15
# Below what this 2-core machine sustains with moto, the stand-in and the driver on it (about 20
# Rekognition calls/s, 9.5 uploads/s measured), so that the quota is what binds.
QUOTA_TPS = 10.0
# Scaling: one upload in flight per replica and a slower service, so that 4 replicas stay well
# under the machine's ceiling and the service's latency, not the CPU, sets each replica's pace.
SCALING_LATENCY_S = 0.4
RESULT_TIMEOUT_S = 120.0
PUT_THREADS = 4


# ---------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto(stack: ExitStack) -> str:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack.callback(_stop, proc)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            return endpoint
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto server did not start")


def start_standin(stack: ExitStack, s3_endpoint: str, **options: Any) -> str:
    args = [sys.executable, "-m", "bench.standin", "--s3", s3_endpoint]
    for name, value in options.items():
        if value is not None:
            args += [f"--{name.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    stack.callback(_stop, proc)
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


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
    elapsed_s: float = 0.0
    notifications: Counter[str] = field(default_factory=Counter)
    durations_ms: list[float] = field(default_factory=list)
    end_to_end_ms: list[float] = field(default_factory=list)
    standin: dict[str, Any] = field(default_factory=dict)
    emf: Counter[str] = field(default_factory=Counter)
    failed_after_retries: int = 0
    lost: int = 0
    rss: list[tuple[int, int]] = field(default_factory=list)

    def report(self) -> str:
        calls = self.standin["calls"]
        admitted = calls.get("Admitted", 0)
        span = self.standin["admitted_span_s"] or 1.0
        rate = admitted / span
        quota = f"{rate / self.quota:.2f} x quota {self.quota:g}" if self.quota else "no quota"
        duplicates = sum(n - 1 for n in self.notifications.values() if n > 1)
        failed_pct = 100.0 * self.failed_after_retries / max(admitted, 1)
        rss = ", ".join(f"{cur // 1024}/{peak // 1024}" for cur, peak in self.rss)
        cap = f"REKOGNITION_MAX_TPS={self.client_tps:g}" if self.client_tps else "no client cap"
        return "\n".join(
            [
                f"[{self.name}] {self.replicas} replica(s), STRATEGY={self.strategy}, "
                f"CONCURRENCY={self.concurrency}, {cap}, "
                f"{self.uploads} uploads, {self.references} references, stand-in latency "
                f"{self.latency_s * 1000:.0f} ms",
                f"  uploads/s            {self.uploads / self.elapsed_s:7.2f}   "
                f"({self.uploads} in {self.elapsed_s:.1f} s)",
                f"  Rekognition calls/s  {rate:7.2f}   ({quota}; {admitted} admitted)",
                f"  throttled calls      {calls.get('Throttled', 0):7d}   "
                f"(EMF: RekognitionThrottles {self.emf['RekognitionThrottles']}, "
                f"RekognitionRetries {self.emf['RekognitionRetries']}, "
                f"RekognitionCalls {self.emf['RekognitionCalls']})",
                f"  failed after retries {self.failed_after_retries:7d}   ({failed_pct:.2f} % of calls)",
                f"  lost / duplicates    {self.lost:7d} / {duplicates}",
                f"  latency duration_ms  p50 {pct(self.durations_ms, 50):6.0f}  "
                f"p95 {pct(self.durations_ms, 95):6.0f} ms",
                f"  upload→notification  p50 {pct(self.end_to_end_ms, 50):6.0f}  "
                f"p95 {pct(self.end_to_end_ms, 95):6.0f} ms",
                f"  RSS per replica MB   {rss}  (current/peak)",
            ]
        )


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
    moto: str,
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
) -> Run:
    run = Run(
        name, replicas, uploads, references, concurrency, client_tps, quota, strategy, latency_s
    )
    with ExitStack() as stack_:
        standin = start_standin(stack_, moto, latency=latency_s, quota=quota)
        stack = Stack.create(moto)
        seed_references(stack, references)
        settings = {
            "CONCURRENCY": str(concurrency),
            "VISIBILITY_TIMEOUT_SECONDS": "30",
            "STRATEGY": strategy,
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

        start = time.time()
        if spaced_s:
            for key in keys:  # one at a time: unloaded latency
                put(key)
                collect(stack, run, put_times, len(run.notifications) + 1)
                time.sleep(spaced_s)
            last = max(put_times.values())
        else:
            pool = ThreadPoolExecutor(PUT_THREADS)
            putter = threading.Thread(target=lambda: list(pool.map(put, keys)), daemon=True)
            putter.start()
            last = collect(stack, run, put_times, uploads)
            putter.join()
        run.elapsed_s = max(last - start, 1e-3)
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
    return run


def tutorial_loop(moto: str, references: int, uploads: int) -> list[float]:
    """The classic Lambda: list the references, CompareFaces one by one, one email per match."""
    latencies: list[float] = []
    with ExitStack() as stack_:
        standin = start_standin(stack_, moto, latency=LATENCY_S, quota=None)
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


def one_replica_at_quota(name: str, client_tps: float | None) -> Callable[[str, Path], None]:
    """One replica, 100 uploads against the quota; ``client_tps`` is REKOGNITION_MAX_TPS."""

    def scenario(moto: str, workdir: Path) -> None:
        run = run_workers(
            moto,
            name,
            replicas=1,
            uploads=100,
            references=4,
            strategy="collection",
            concurrency=8,
            client_tps=client_tps,
            quota=QUOTA_TPS,
            workdir=workdir,
        )
        print(run.report(), flush=True)

    return scenario


def scenario_scaling(moto: str, workdir: Path) -> None:
    rates = {}
    for replicas in (1, 2, 4):
        run = run_workers(
            moto,
            f"scale{replicas}",
            replicas=replicas,
            uploads=30 * replicas,
            references=4,
            strategy="collection",
            concurrency=1,
            client_tps=None,
            quota=None,
            workdir=workdir,
            latency_s=SCALING_LATENCY_S,
        )
        print(run.report(), flush=True)
        rates[replicas] = run.uploads / run.elapsed_s
    print(
        f"  scaling: 2 replicas {rates[2] / rates[1]:.2f} x, 4 replicas {rates[4] / rates[1]:.2f} x one replica",
        flush=True,
    )


def scenario_tutorial(moto: str, workdir: Path) -> None:
    references, uploads = 20, 10
    runs = [
        run_workers(
            moto,
            f"latency20-{strategy}",
            replicas=1,
            uploads=uploads,
            references=references,
            concurrency=8,
            client_tps=None,
            quota=None,
            workdir=workdir,
            spaced_s=0.2,
            strategy=strategy,
        )
        for strategy in ("auto", "compare")
    ]
    for run in runs:
        print(run.report(), flush=True)
    loop = tutorial_loop(moto, references, uploads)
    print(
        f"[tutorial] sequential CompareFaces over {references} listed references, "
        f"{uploads} uploads one at a time",
        flush=True,
    )
    print(f"  per-upload latency   p50 {pct(loop, 50):6.0f}  p95 {pct(loop, 95):6.0f} ms")
    for run in runs:
        print(
            f"  ratio tutorial/worker STRATEGY={run.strategy} (p50): "
            f"{pct(loop, 50) / pct(run.durations_ms, 50):.1f} x by duration_ms, "
            f"{pct(loop, 50) / pct(run.end_to_end_ms, 50):.1f} x by upload→notification",
            flush=True,
        )


SCENARIOS = {
    "quota": one_replica_at_quota("quota", client_tps=QUOTA_TPS),
    "throttled": one_replica_at_quota("throttled", client_tps=None),
    "scaling": scenario_scaling,
    "tutorial": scenario_tutorial,
}


def main(argv: list[str]) -> int:
    chosen = argv or list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
        return 2
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}", flush=True)
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        moto = start_moto(stack)
        for name in chosen:
            SCENARIOS[name](moto, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
