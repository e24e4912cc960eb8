"""Three hot spots of moto's server, taken out without changing any answer it gives.

Found with py-spy on the moto process of ``python -m bench.throughput scaling`` (moto 5.2.5);
``python -m bench.moto_cost`` measures them (docs/benchmarks.md):

1. To tell which backend a request is for, moto's dispatcher
   (``DomainDispatcherApplication.get_backend_for_host``) asks whether the service name is one of
   moto's modules — ``moto.backends.list_of_moto_modules()``, which lists moto's package
   directory and calls ``isdir`` on each of its ~200 entries, on every request: about a third of
   the CPU of a HeadObject. The directory does not change while the process runs: listed once.
2. SQS ReceiveMessage checks every message it returns against the queue's retention period
   through ``get_queue_attributes(queue, ["MessageRetentionPeriod"])``, which builds all of the
   queue's attributes first — ``ApproximateNumberOfMessages*`` each walk every message — so each
   message received costs time in proportion to the queue's depth. The retention period is read
   from the queue itself; the test is the same (``sent_timestamp`` + retention > now).
3. SNS signs every notification it delivers to SQS with an RSA key it generates once per
   subscription (``Subscription.private_key``, an ``lru_cache`` without a lock): 80 to 400 ms of CPU
   at a subscription's first notification, and as many keys as threads publishing at once — four
   replicas' first results waited for four keys. One key per process now, made once under a
   lock; each notification still gets its own certificate and signature, as before.

:func:`apply` may be called any number of times; it is called by the embedded AWS (``worker
embedded``), the integration tests' moto server and the benchmarks' (``python -m
bench.moto_server``). Where a later moto no longer has these functions, it leaves moto as it is.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import moto.backends
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.core.utils import unix_time
from moto.sns.models import Subscription
from moto.sqs.models import SQSBackend

# moto's own functions, as imported (the tests compare the speed-ups' answers with theirs).
_original_modules = getattr(moto.backends, "list_of_moto_modules", None)
_stock_retention_check = getattr(SQSBackend, "is_message_valid_based_on_retention_period", None)
_stock_private_key = getattr(Subscription, "private_key", None)

_key_lock = threading.Lock()


def apply() -> None:
    """Install the speed-ups in this process; calling it again changes nothing."""
    if _original_modules is not None:
        moto.backends.list_of_moto_modules = functools.cache(lambda: tuple(_original_modules()))
    if _stock_retention_check is not None:
        SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign]
    if _stock_private_key is not None:
        Subscription.private_key = _shared_private_key  # type: ignore[method-assign,assignment]


def _within_retention(self: Any, queue_name: str, message: Any) -> bool:
    """moto's own test, with the retention period read from the queue, not from all of its
    attributes."""
    queue = self.get_queue(queue_name)
    retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000
    return bool(retain_until > unix_time())


def _shared_private_key(self: Any) -> rsa.RSAPrivateKey:
    """The key SNS signs notifications with, as moto makes it, once for every subscription."""
    return signing_key()


@functools.cache
def _generate_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signing_key() -> rsa.RSAPrivateKey:
    """The process's SNS signing key (made on first use; call it early to make it then)."""
    with _key_lock:
        return _generate_key()
