"""The worker's one error tree.

Every failure the pipeline can meet is one of two kinds: *retryable* (the same call may succeed
later: throttling, 5xx, timeouts, an unreachable endpoint) or *permanent* (asking again will not
help: a bad event, an image Rekognition refuses, a missing object). Adapters translate botocore's
``ClientError`` codes into these classes (``raise … from exc``) so that nothing above them looks at
AWS error codes.
"""

from __future__ import annotations


class WorkerError(Exception):
    """Root of every error the worker raises on purpose. ``code`` keeps the AWS error code."""

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class ConfigError(WorkerError):
    """Settings are missing or invalid. ``problems`` holds one line per bad variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class RetryableError(WorkerError):
    """A transient failure: the same call may succeed later."""


class ThrottledError(RetryableError):
    """The service refused the call for rate reasons."""


class ConditionFailedError(RetryableError):
    """A conditional write lost (``If-Match`` / ``If-None-Match``): re-read and decide again."""


class PermanentError(WorkerError):
    """Asking again will not help."""

    error_type = "PermanentError"


class NotFoundError(PermanentError):
    """The named resource does not exist (an object, a bucket, a queue, a collection)."""

    error_type = "NotFound"


class AlreadyExistsError(PermanentError):
    """Creating something that exists already (a collection, a bucket this account owns)."""

    error_type = "AlreadyExists"


class BadMessageError(PermanentError):
    """An SQS body that is not an event we understand. Goes to the dead-letter queue."""

    error_type = "BadMessage"


class InvalidImageError(PermanentError):
    """The object is not an image Rekognition can use. Becomes an ``invalid_image`` result."""

    error_type = "InvalidImage"


class NoFaceError(PermanentError):
    """Rekognition found no face where one was required (CompareFaces' source image)."""

    error_type = "NoFace"


class ObjectGoneError(NotFoundError):
    """The S3 object no longer exists (deleted before it was processed)."""

    error_type = "ObjectGone"


class UnreadableObjectError(PermanentError):
    """Rekognition could not read an ``S3Object`` (``InvalidS3ObjectException``).

    AWS answers the same code for an object that is gone and for one that exists but cannot be
    read by the caller: a KMS key the role may not use, a missing permission, a bucket in another
    region. AWS's error-handling guide gives its message as "Unable to get object metadata from S3.
    Check object key, region and/or access permissions."
    (https://docs.aws.amazon.com/rekognition/latest/dg/error-handling.html). It never says *which*
    image of a two-image call it means, so it blames no one: the pipeline re-checks the objects.
    """

    error_type = "UnreadableObject"


class AccessDeniedError(PermanentError):
    """Credentials do not allow the call."""

    error_type = "AccessDenied"
