"""The one place AWS error codes are read: botocore's failures → the worker's typed errors.

Every adapter passes a ``ClientError`` or a botocore connection error through :func:`translate`
and catches the typed result (:class:`~worker.errors.NotFoundError`,
:class:`~worker.errors.ConditionFailedError`, :class:`~worker.errors.ThrottledError`, …), so no
code above the edge compares error-code strings. ``code`` keeps the AWS code for the logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    InvalidRegionError,
    NoAuthTokenError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from worker.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    ConditionFailedError,
    InvalidImageError,
    NoFaceError,
    NotFoundError,
    PermanentError,
    RetryableError,
    ThrottledError,
    UnreadableObjectError,
    WorkerError,
)

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",  # Rekognition, SNS
        "Throttling",  # SNS (query protocol)
        "ProvisionedThroughputExceededException",  # Rekognition
        "LimitExceededException",  # Rekognition: concurrent jobs
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",  # SQS
        "SlowDown",  # S3
    }
)
TRANSIENT_CODES = frozenset(
    {"InternalServerError", "ServiceUnavailableException", "ServiceUnavailable", "RequestTimeout"}
)
# Codes that mean the same thing across services, and what they become.
KIND_CODES: dict[str, type[WorkerError]] = {
    **dict.fromkeys(
        (
            "404",
            "NotFound",
            "NoSuchKey",
            "NoSuchVersion",
            "NoSuchBucket",
            "NotFoundException",
            "ResourceNotFoundException",  # Rekognition collections
            "AWS.SimpleQueueService.NonExistentQueue",  # SQS (query protocol)
            "QueueDoesNotExist",  # SQS (JSON protocol)
        ),
        NotFoundError,
    ),
    **dict.fromkeys(
        ("ResourceAlreadyExistsException", "BucketAlreadyOwnedByYou"), AlreadyExistsError
    ),
    **dict.fromkeys(
        ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"), ConditionFailedError
    ),
    **dict.fromkeys(
        ("AccessDenied", "AccessDeniedException", "403", "Forbidden", "AuthorizationError"),
        AccessDeniedError,
    ),
    "InvalidImageFormatException": InvalidImageError,
    "ImageTooLargeException": InvalidImageError,
    "InvalidS3ObjectException": UnreadableObjectError,
    # Rekognition's answer for an image with no usable face where one is required.
    "InvalidParameterException": NoFaceError,
}

CONNECTION_ERRORS = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
)


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ``ClientError`` (``"404"`` for a body-less HEAD)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception) -> WorkerError:
    """Map a botocore failure onto the worker's error tree — the one place AWS error codes are
    read. Callers catch the typed errors (:class:`NotFoundError`, :class:`ConditionFailedError`,
    :class:`ThrottledError`, …), never codes; ``code`` keeps the AWS code for the logs."""
    if isinstance(exc, WorkerError):
        return exc
    if isinstance(exc, CONNECTION_ERRORS):
        return RetryableError(f"connection problem: {exc}")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = str(exc.response.get("Error", {}).get("Message", "")) or code
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in THROTTLING_CODES:
            return ThrottledError(f"{code}: {message}", code=code)
        if status == 501:  # Not Implemented: asking again will not help
            return PermanentError(f"{code or status}: {message}", code=code or "NotImplemented")
        kind = KIND_CODES.get(code)
        if kind is not None:
            return kind(f"{code}: {message}", code=code)
        if code in TRANSIENT_CODES or status >= 500:
            return RetryableError(f"{code or status}: {message}", code=code)
        return PermanentError(f"{code}: {message}", code=code)
    return RetryableError(f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- why AWS is out of reach


class Access(StrEnum):
    """What stands between this process and AWS. The first three are configuration."""

    REGION = "region"
    CREDENTIALS = "credentials"
    ENDPOINT = "endpoint"
    UNREACHABLE = "unreachable"
    DENIED = "denied"
    FAILED = "failed"


CONFIGURATION_PROBLEMS = frozenset({Access.REGION, Access.CREDENTIALS, Access.ENDPOINT})
# The same for every call of the process, whatever resource it names.
ENVIRONMENT_PROBLEMS = CONFIGURATION_PROBLEMS | {Access.UNREACHABLE}

# Credentials AWS does not accept: an unknown key, a wrong secret, a bad or stale session token.
REJECTED_CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",  # STS, SNS, SQS (query protocol)
        "UnrecognizedClientException",  # JSON-protocol services: Rekognition, SQS
        "InvalidAccessKeyId",  # S3
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "InvalidToken",
        "AuthFailure",
    }
)
EXPIRED_CREDENTIAL_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"}
)
CLOCK_SKEW_CODES = frozenset(
    {"RequestTimeTooSkewed", "RequestExpired", "RequestTimeTooSkewedException"}
)

_SET_CREDENTIALS = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones) "
    "or AWS_PROFILE; any values do for a local endpoint"
)
_CREDENTIAL_ERRORS = (
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    CredentialRetrievalError,
    TokenRetrievalError,
    NoAuthTokenError,
    SSOError,
)


@dataclass(frozen=True)
class AccessProblem:
    """Why AWS cannot be used from here, as one line that names the cause and the fix."""

    kind: Access
    line: str

    @property
    def is_configuration(self) -> bool:
        """A setting to change (exit 2), not a failure at run time (exit 1)."""
        return self.kind in CONFIGURATION_PROBLEMS


def access_problem(exc: BaseException) -> AccessProblem | None:
    """The AWS failure behind ``exc`` (itself or anything in its ``__cause__``/``__context__``
    chain), as one line: no region, no or refused credentials, a bad or unreachable endpoint, a
    denied call, or another AWS error. None when no AWS failure is behind it.

    Region, credential and endpoint problems get the same line whatever call met them; a denied
    call or another AWS error keeps the words of a :class:`WorkerError` that already explains it.
    """
    for error in _chain(exc):
        found = _environment_problem(error)
        if found is not None:
            return found
        if isinstance(error, ClientError):
            code = error_code(error)
            detail = str(exc) if isinstance(exc, WorkerError) else f"{code}: {_message(error)}"
            if error.operation_name not in detail:
                detail = f"{error.operation_name}: {detail}"
            if isinstance(translate(error), AccessDeniedError):
                return AccessProblem(
                    Access.DENIED,
                    _one_line(
                        f"access denied: {detail} (allow it for the credentials in use, "
                        "or use others)"
                    ),
                )
            if isinstance(exc, WorkerError):
                return None  # already said the way the worker says it
            return AccessProblem(Access.FAILED, _one_line(f"AWS error in {detail}"))
        if isinstance(error, BotoCoreError) and not isinstance(exc, WorkerError):
            return AccessProblem(Access.FAILED, _one_line(f"AWS error: {error}"))
    return None


def _environment_problem(error: BaseException) -> AccessProblem | None:
    """Region, credentials, endpoint: what makes every call fail, whatever it asks."""
    if isinstance(error, NoRegionError):
        return AccessProblem(
            Access.REGION,
            "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION / a profile's region)",
        )
    if isinstance(error, InvalidRegionError):
        return AccessProblem(
            Access.REGION,
            f"invalid AWS region {error.kwargs.get('region_name')!r}: set AWS_REGION to a region "
            "name such as us-east-1",
        )
    if isinstance(error, NoCredentialsError):
        return AccessProblem(Access.CREDENTIALS, f"no AWS credentials: {_SET_CREDENTIALS}")
    if isinstance(error, _CREDENTIAL_ERRORS):
        return AccessProblem(
            Access.CREDENTIALS, _one_line(f"AWS credentials unusable ({error}): {_SET_CREDENTIALS}")
        )
    if isinstance(error, ValueError) and str(error).startswith("Invalid endpoint"):
        return AccessProblem(
            Access.ENDPOINT,
            _one_line(
                f"{error}: set AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_<SERVICE>) to a URL such as "
                "http://127.0.0.1:4566, or unset it to use AWS"
            ),
        )
    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return _unreachable(error)
    if isinstance(error, ClientError):
        code = error_code(error)
        if code in EXPIRED_CREDENTIAL_CODES:
            return AccessProblem(
                Access.CREDENTIALS,
                f"AWS credentials expired ({code}): renew them (new AWS_SESSION_TOKEN, or "
                "`aws sso login` for a profile)",
            )
        if code in REJECTED_CREDENTIAL_CODES:
            return AccessProblem(
                Access.CREDENTIALS,
                f"AWS rejected the credentials ({code}): check AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (or AWS_PROFILE)",
            )
        if code in CLOCK_SKEW_CODES:
            return AccessProblem(
                Access.CREDENTIALS,
                f"AWS refused the request's time ({code}): set this machine's clock right (NTP)",
            )
    return None


def _unreachable(error: BotoCoreError) -> AccessProblem:
    url = str(getattr(error, "kwargs", {}).get("endpoint_url") or "")
    if "URL scheme" in str(error):  # urllib3: "Not supported URL scheme ftp"
        return AccessProblem(
            Access.ENDPOINT,
            _one_line(
                f"invalid endpoint URL ({error}): AWS_ENDPOINT_URL must start with http:// "
                "or https://"
            ),
        )
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}" if parts.netloc else "the AWS endpoint"
    return AccessProblem(
        Access.UNREACHABLE,
        f"cannot reach {where} ({type(error).__name__}): start it or fix AWS_ENDPOINT_URL "
        "(unset for AWS itself), or check the network and proxy",
    )


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, then what caused it (``raise … from``) or was being handled when it was raised."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in found):
        found.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return found


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or error_code(exc)


def _one_line(text: str) -> str:
    return " ".join(text.split())
