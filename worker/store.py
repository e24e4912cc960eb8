"""Result records in S3: look up, write conditionally, mark as published. The S3 edge of
:mod:`worker.results`.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from worker.aws.errors import translate
from worker.errors import AccessDeniedError, ConditionFailedError, NotFoundError, PermanentError
from worker.references import normalise_etag
from worker.results import ExistingRecord, ResultRecord, result_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

META_UPLOAD_ID = "upload-id"
META_SEQUENCER = "upload-sequencer"
META_NOTIFIED = "notified"
PENDING, SENT = "pending", "sent"


class RecordConflict(ConditionFailedError):
    """Another delivery wrote the record between our look-up and our write."""


class ResultStore:
    """``writes`` (default: ``s3``) is the client for the writes made under the publish lease."""

    def __init__(
        self, s3: S3Client, bucket: str, prefix: str, writes: S3Client | None = None
    ) -> None:
        self._s3, self._bucket, self._prefix = s3, bucket, prefix
        self._writes = writes or s3

    def key_for(self, upload_key: str) -> str:
        return result_key(upload_key, self._prefix)

    def lookup(self, upload_key: str) -> ExistingRecord | None:
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=self.key_for(upload_key))
        except ClientError as exc:
            error = translate(exc)
            if isinstance(error, NotFoundError):
                return None
            if isinstance(error, AccessDeniedError):
                # S3 answers a HEAD of a missing key with 403, not 404, when the caller may not
                # s3:ListBucket the bucket (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html,
                # "Permissions"): every first delivery would look refused.
                raise AccessDeniedError(
                    f"HEAD s3://{self._bucket}/{self.key_for(upload_key)} was refused (403). S3 "
                    f"answers 403 instead of 404 for a missing key unless the role may "
                    f"s3:ListBucket the bucket for the prefix {self._prefix!r}, and s3:GetObject "
                    f"on it: grant both",
                    code=error.code,
                ) from exc
            raise error from exc
        except BotoCoreError as exc:
            raise translate(exc) from exc
        meta = head.get("Metadata", {})
        modified = head.get("LastModified") or datetime.now(UTC)
        return ExistingRecord(
            etag=normalise_etag(head.get("ETag")),
            upload_id=meta.get(META_UPLOAD_ID),
            sequencer=meta.get(META_SEQUENCER),
            notified=meta.get(META_NOTIFIED) == SENT,
            age_seconds=(datetime.now(UTC) - modified).total_seconds(),
        )

    def read(self, upload_key: str) -> ResultRecord:
        """The stored record; :class:`PermanentError` if the object is not a valid record."""
        key = self.key_for(upload_key)
        try:
            obj = self._s3.get_object(Bucket=self._bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc) from exc
        try:
            return ResultRecord.from_json(json.loads(obj["Body"].read()))
        except ValueError as exc:  # not JSON, or not a record
            raise PermanentError(
                f"s3://{self._bucket}/{key} is not a result record: {exc}"
            ) from exc

    def write(
        self,
        record: ResultRecord,
        *,
        upload_id: str,
        sequencer: str | None,
        expect_etag: str | None,
        notified: bool = False,
        leased: bool = False,
    ) -> str:
        """Write the record conditionally; return its ETag. :class:`RecordConflict` if raced.

        Two writes of one body have one ETag (an MD5 where the bucket is not KMS-encrypted), so
        ``If-Match`` could not tell concurrent writers apart: every record carries its own
        ``notification_id``, new for each write that is to be published (see the pipeline).
        """
        metadata = {META_UPLOAD_ID: upload_id, META_NOTIFIED: SENT if notified else PENDING}
        if sequencer:
            metadata[META_SEQUENCER] = sequencer
        condition = {"IfMatch": f'"{expect_etag}"'} if expect_etag else {"IfNoneMatch": "*"}
        client = self._writes if leased else self._s3
        try:
            response = client.put_object(
                Bucket=self._bucket,
                Key=self.key_for(record.key),
                Body=json.dumps(record.to_json(), ensure_ascii=False, indent=2).encode("utf-8"),
                ContentType="application/json",
                Metadata=metadata,
                **condition,  # type: ignore[arg-type]  # one of two condition headers
            )
        except (ClientError, BotoCoreError) as exc:
            error = translate(exc)
            if isinstance(error, ConditionFailedError):
                raise RecordConflict(
                    f"result record for {record.key!r} changed meanwhile", code=error.code
                ) from exc
            raise error from exc
        return normalise_etag(response.get("ETag"))

    def mark_notified(
        self, record: ResultRecord, *, upload_id: str, sequencer: str | None, etag: str
    ) -> None:
        """Rewrite the same record as ``notified=sent``. A newer upload's record wins quietly."""
        with contextlib.suppress(RecordConflict):
            self.write(
                record,
                upload_id=upload_id,
                sequencer=sequencer,
                expect_etag=etag,
                notified=True,
                leased=True,
            )
