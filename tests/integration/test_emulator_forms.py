"""What differs between moto, LocalStack and AWS in what the worker reads, and that the worker
takes each form — above all AWS's — to the same object.

Observed (moto 5.2, LocalStack 2026.3; AWS from its documentation and behaviour):

| | moto | LocalStack | AWS |
|---|---|---|---|
| event key, `a b+c%d/é` | `quote_plus`, `/` too: `a+b%2Bc%25d%2F%C3%A9` | `%20` for a space: `a%20b%2Bc%25d/%C3%A9` | `+` for a space, `/` kept: `a+b%2Bc%25d/%C3%A9` |
| event `sequencer` | absent | present, the same for every event | grows per key |
| event `eTag` / HEAD `ETag` | unquoted / quoted | unquoted / quoted | unquoted / quoted |
| `IfNoneMatch: *` on an existing key | 412 PreconditionFailed | 412 | 412 |
| `IfMatch` on a missing key | 404 NoSuchKey | 404 NoSuchKey | 404 NoSuchKey |
| queue URL | the endpoint's host | `sqs.<region>.localhost.localstack.cloud` | `sqs.<region>.amazonaws.com` |

``unquote_plus`` reads all three key forms, since each encodes a literal ``+`` as ``%2B``.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError

from tests.integration.harness import Stack
from tests.records import a_record
from worker.events import parse_body
from worker.store import RecordConflict, ResultStore

pytestmark = [pytest.mark.slow, pytest.mark.emulators("moto", "localstack")]

KEY = "uploads/a b+c%d/é (1).jpg"
# AWS's form of KEY in an event: form-encoded (space → "+"), "/" left as it is.
AWS_ENCODED = "uploads/a+b%2Bc%25d/%C3%A9+%281%29.jpg"


def upload_records(
    stack: Stack, want: int, timeout: float = 20.0
) -> list[tuple[str, dict[str, Any]]]:
    """(body, record) of each ObjectCreated event under uploads/, deleting what it reads."""
    found: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    while len(found) < want and time.monotonic() < deadline:
        messages = stack.sqs.receive_message(
            QueueUrl=stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        for message in messages:
            stack.sqs.delete_message(
                QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
            for record in json.loads(message["Body"]).get("Records", []):
                if unquote_plus(record["s3"]["object"]["key"]).startswith("uploads/"):
                    found.append((json.dumps({"Records": [record]}), record))
    assert len(found) == want, found
    return found


def test_event_keys_etags_and_sequencers_lead_to_the_object(stack: Stack) -> None:
    stack.put(KEY, b"first")
    first_etag = stack.s3.head_object(Bucket=stack.bucket, Key=KEY)["ETag"]
    stack.put(KEY, b"second")
    second_etag = stack.s3.head_object(Bucket=stack.bucket, Key=KEY)["ETag"]
    records = upload_records(stack, 2)

    raw_keys = {record["s3"]["object"]["key"] for _, record in records}
    assert len(raw_keys) == 1
    (raw_key,) = raw_keys
    assert raw_key != KEY, "keys in events are URL-encoded"
    assert "%2B" in raw_key, "a literal '+' is always %2B, so '+' can only mean a space"

    refs = [parse_body(body).objects[0] for body, _ in records]
    assert {ref.key for ref in refs} == {KEY}
    # The event's eTag is unquoted, HEAD's is quoted: the worker compares them unquoted.
    assert sorted(ref.etag or "" for ref in refs) == sorted(
        tag.strip('"') for tag in (first_etag, second_etag)
    )
    assert all(not (ref.etag or "").startswith('"') for ref in refs)
    # A sequencer, where there is one, is hexadecimal (LocalStack's never changes; moto has none).
    for ref in refs:
        assert ref.sequencer is None or int(ref.sequencer, 16) >= 0

    # AWS's own form of the same key reaches the same object.
    (_, record) = records[0]
    record["s3"]["object"]["key"] = AWS_ENCODED
    aws = parse_body(json.dumps({"Records": [record]})).objects[0]
    assert aws.key == KEY
    assert stack.s3.head_object(Bucket=stack.bucket, Key=aws.key)["ETag"] == second_etag


def test_conditional_writes_answer_as_aws_does(stack: Stack) -> None:
    store = ResultStore(stack.s3, stack.bucket, "results/")
    record = a_record(bucket=stack.bucket).with_notification_id()
    etag = store.write(record, upload_id="u1", sequencer=None, expect_etag=None)
    assert etag and not etag.startswith('"')
    # If-None-Match: * on an existing key → 412 → the worker's "another delivery won".
    with pytest.raises(RecordConflict):
        store.write(record, upload_id="u1", sequencer=None, expect_etag=None)
    # If-Match with a stale ETag → 412 as well.
    with pytest.raises(RecordConflict):
        store.write(record, upload_id="u1", sequencer=None, expect_etag="0" * 32)
    # If-Match with the current ETag (the worker sends it quoted) → written.
    assert store.write(
        record.with_notification_id(),
        upload_id="u1",
        sequencer=None,
        expect_etag=etag,
    )
    # If-Match on a key that is gone → 404 NoSuchKey, not 412 (on AWS too).
    with pytest.raises(ClientError) as missing:
        stack.s3.put_object(
            Bucket=stack.bucket, Key="results/none.json", Body=b"{}", IfMatch=f'"{etag}"'
        )
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
