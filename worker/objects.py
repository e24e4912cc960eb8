"""The upload in S3: what it is (one ranged GET: its identity, size and first bytes) and how
Rekognition should see it.

JPEG and PNG within Rekognition's S3 limit go as ``S3Object`` references (never downloaded).
Anything else that is an image is downloaded once, converted by :mod:`worker.images` and sent as
``Bytes``. Objects larger than ``MAX_OBJECT_BYTES`` are refused without downloading them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from worker import images
from worker.aws.errors import error_code, translate
from worker.errors import (
    AccessDeniedError,
    ConditionFailedError,
    InvalidImageError,
    NotFoundError,
    ObjectGoneError,
)
from worker.events import ObjectRef
from worker.recognition.client import Image
from worker.references import normalise_etag

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class ObjectReplacedError(ObjectGoneError):
    """The key now holds another object than the one being processed."""


@dataclass(frozen=True)
class Upload:
    """The upload as it is in S3 now."""

    bucket: str
    key: str
    etag: str
    version_id: str | None
    size: int
    # Its first bytes (at most images.SNIFF_BYTES), when it was opened rather than HEADed.
    leading: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def identity(self) -> str:
        """What distinguishes this upload from another one under the same key."""
        return self.version_id or self.etag


class ObjectStore:
    """Reads uploads. All S3 reads of the data path go through here."""

    def __init__(self, s3: S3Client, max_object_bytes: int) -> None:
        self._s3 = s3
        self._max_bytes = max_object_bytes

    def open(self, ref: ObjectRef) -> Upload:
        """The upload as S3 has it now, with its first bytes: one GET of ``bytes=0-31`` answers
        its ETag, version and size (``Content-Range: bytes 0-31/<size>``) as a HEAD would, and
        what kind of file it is. Same permission as HEAD (s3:GetObject, or s3:GetObjectVersion),
        same 404/403 (API_GetObject.html, "Permissions"); an SSE-KMS upload also needs
        kms:Decrypt, which reading it needed anyway. An empty object has no byte 0: S3 answers
        416 InvalidRange (ErrorResponses.html#ErrorCodeList; RFC 9110, 14.1.2), and a HEAD then
        tells what it is.
        """
        params: dict[str, Any] = {
            "Bucket": ref.bucket,
            "Key": ref.key,
            "Range": f"bytes=0-{images.SNIFF_BYTES - 1}",
        }
        if ref.version_id:
            params["VersionId"] = ref.version_id
        try:
            got = self._s3.get_object(**params)
            content_range = str(got.get("ContentRange") or "")
            if content_range:  # 206: at most SNIFF_BYTES; read to the end, the connection is reused
                leading = got["Body"].read()
            else:  # 200: a server that ignored the Range sends it all; read no more than asked
                with got["Body"] as body:
                    leading = body.read(images.SNIFF_BYTES)
        except BotoCoreError as exc:
            raise translate(exc) from exc
        except ClientError as exc:
            if error_code(exc) == "InvalidRange":
                return self.head(ref)
            raise _translate_missing(exc, ref) from exc
        size = content_range.rpartition("/")[2] if content_range else got.get("ContentLength")
        if not str(size).isdigit():  # "bytes 0-31/*": a server that does not say; HEAD asks
            return self.head(ref)
        return _upload(ref, got, int(str(size)), leading[: images.SNIFF_BYTES])

    def head(self, ref: ObjectRef) -> Upload:
        params: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            params["VersionId"] = ref.version_id
        try:
            head = self._s3.head_object(**params)
        except BotoCoreError as exc:
            raise translate(exc) from exc
        except ClientError as exc:
            raise _translate_missing(exc, ref) from exc
        return _upload(ref, head, int(head.get("ContentLength", 0)))

    def recheck(self, upload: Upload) -> None:
        """Raise unless ``upload`` is still what the key holds (after Rekognition has read it).

        Unversioned bucket: Rekognition read whatever the key held, so another eTag now means the
        result may describe the newer photo → :class:`ObjectReplacedError` (the newer photo's own
        event brings its result). Versioned bucket: Rekognition read the exact version, so only a
        delete (a delete marker, or the version itself removed) ends it → :class:`ObjectGoneError`.
        """
        current = self.head(ObjectRef(bucket=upload.bucket, key=upload.key))
        if upload.version_id is None and current.etag != upload.etag:
            raise ObjectReplacedError(
                f"s3://{upload.bucket}/{upload.key} was replaced while it was processed"
            )
        if upload.version_id is not None and current.version_id != upload.version_id:
            self.head(ObjectRef(bucket=upload.bucket, key=upload.key, version_id=upload.version_id))

    def image_for_rekognition(self, upload: Upload) -> Image:
        """The ``Image`` parameter for this upload; :class:`InvalidImageError` when it is none."""
        if upload.size == 0:
            raise InvalidImageError("empty object (0 bytes)")
        if upload.size > self._max_bytes:
            raise InvalidImageError(
                f"object too large: {upload.size:,} bytes (limit {self._max_bytes:,})"
            )
        head = upload.leading
        if head is None:
            head = self._read(upload, byte_range=f"bytes=0-{images.SNIFF_BYTES - 1}")
        fmt = images.sniff(head)
        if fmt is None:
            raise InvalidImageError(images.describe_non_image(head))
        if fmt in images.NATIVE_FORMATS and not images.needs_conversion(fmt, upload.size):
            s3_object: dict[str, str] = {"Bucket": upload.bucket, "Name": upload.key}
            if upload.version_id:
                s3_object["Version"] = upload.version_id
            return {"S3Object": s3_object}
        return {"Bytes": images.to_rekognition_jpeg(self._read(upload), fmt)}

    def read_image(self, image: Image) -> bytes:
        """The bytes behind a Rekognition ``Image`` (downloading an ``S3Object`` one)."""
        if "Bytes" in image:
            return bytes(image["Bytes"])
        s3_object = image["S3Object"]
        params: dict[str, Any] = {"Bucket": s3_object["Bucket"], "Key": s3_object["Name"]}
        if s3_object.get("Version"):
            params["VersionId"] = s3_object["Version"]
        try:
            return self._s3.get_object(**params)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc) from exc

    def _read(self, upload: Upload, byte_range: str | None = None) -> bytes:
        params: dict[str, Any] = {"Bucket": upload.bucket, "Key": upload.key}
        if upload.version_id:
            params["VersionId"] = upload.version_id
        else:
            params["IfMatch"] = f'"{upload.etag}"'
        if byte_range:
            params["Range"] = byte_range
        try:
            body = self._s3.get_object(**params)["Body"]
            return body.read()
        except BotoCoreError as exc:
            raise translate(exc) from exc
        except ClientError as exc:
            raise _translate_missing(exc, upload) from exc


def _upload(ref: ObjectRef, answer: Any, size: int, leading: bytes | None = None) -> Upload:
    """The upload that S3's HEAD or GET ``answer`` describes."""
    version = answer.get("VersionId")
    return Upload(
        bucket=ref.bucket,
        key=ref.key,
        etag=normalise_etag(answer.get("ETag")),
        version_id=version if version and version != "null" else None,
        size=size,
        leading=leading,
    )


def _translate_missing(exc: ClientError, obj: ObjectRef | Upload) -> Exception:
    error = translate(exc)
    where = f"s3://{obj.bucket}/{obj.key}"
    if isinstance(error, NotFoundError):
        return ObjectGoneError(f"{where} no longer exists", code=error.code)
    if isinstance(error, ConditionFailedError):
        return ObjectReplacedError(f"{where} was replaced meanwhile", code=error.code)
    if isinstance(error, AccessDeniedError):
        # A missing key answers 403, not 404, to a caller without s3:ListBucket
        # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html, "Permissions").
        return AccessDeniedError(
            f"{where}: refused (403). S3 answers 403 instead of 404 for a missing key unless the "
            "role may s3:ListBucket the bucket for this prefix: grant it, and s3:GetObject "
            "(s3:GetObjectVersion for a version) on the key",
            code=error.code,
        )
    return error
