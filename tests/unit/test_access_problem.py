"""Why AWS is out of reach, in one line and an exit code (worker.aws.errors.access_problem and
worker.cli.report): every botocore failure a user can meet by configuration, raised bare or
wrapped by an adapter, and what stays a bug (a traceback)."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    InvalidRegionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    UnauthorizedSSOTokenError,
)

from worker.aws.errors import Access, access_problem
from worker.cli import report
from worker.errors import ConfigError, RetryableError, WorkerError


def client_error(code: str, status: int = 400, operation: str = "ReceiveMessage") -> ClientError:
    response = {
        "Error": {"Code": code, "Message": f"message of {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)  # type: ignore[arg-type]


def wrapped(cause: BaseException, outer: WorkerError) -> WorkerError:
    """``outer`` raised ``from cause``, as the adapters do."""
    try:
        raise outer from cause
    except WorkerError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "kind", "says"),
    [
        (NoRegionError(), Access.REGION, "no AWS region: set AWS_REGION"),
        (InvalidRegionError(region_name="mars 1"), Access.REGION, "'mars 1'"),
        (NoCredentialsError(), Access.CREDENTIALS, "no AWS credentials: set AWS_ACCESS_KEY_ID"),
        (
            PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
            Access.CREDENTIALS,
            "missing: AWS_SECRET_ACCESS_KEY",
        ),
        (ProfileNotFound(profile="prod"), Access.CREDENTIALS, "(prod)"),
        (UnauthorizedSSOTokenError(), Access.CREDENTIALS, "aws sso login"),
        (client_error("ExpiredToken", 403), Access.CREDENTIALS, "expired (ExpiredToken): renew"),
        (client_error("InvalidClientTokenId", 403), Access.CREDENTIALS, "rejected the credentials"),
        (client_error("UnrecognizedClientException"), Access.CREDENTIALS, "AWS_ACCESS_KEY_ID"),
        (client_error("SignatureDoesNotMatch", 403), Access.CREDENTIALS, "AWS_SECRET_ACCESS_KEY"),
        (client_error("RequestTimeTooSkewed", 403), Access.CREDENTIALS, "clock"),
        (ValueError("Invalid endpoint: not-a-url"), Access.ENDPOINT, "not-a-url: set AWS_ENDPOINT"),
        (
            HTTPClientError(error="Not supported URL scheme ftp"),
            Access.ENDPOINT,
            "must start with http://",
        ),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:9/q?Action=x"),
            Access.UNREACHABLE,
            "cannot reach http://127.0.0.1:9 (EndpointConnectionError): start it or fix",
        ),
        (ConnectTimeoutError(endpoint_url="https://sqs.x"), Access.UNREACHABLE, "https://sqs.x"),
        (client_error("AccessDenied", 403), Access.DENIED, "access denied: ReceiveMessage"),
        (client_error("AccessDeniedException"), Access.DENIED, "allow it for the credentials"),
        (client_error("403", 403, "HeadBucket"), Access.DENIED, "HeadBucket: 403"),
        (client_error("AuthorizationError", 403, "Publish"), Access.DENIED, "Publish"),
        (client_error("InternalError", 500), Access.FAILED, "AWS error in ReceiveMessage"),
        (ParamValidationError(report="bad\nbucket"), Access.FAILED, "bad bucket"),
    ],
)
def test_each_cause_is_one_line_naming_it_and_the_fix(
    error: Exception, kind: Access, says: str
) -> None:
    problem = access_problem(error)
    assert problem is not None
    assert problem.kind is kind
    assert says in problem.line
    assert "\n" not in problem.line
    assert problem.is_configuration == (
        kind in {Access.REGION, Access.CREDENTIALS, Access.ENDPOINT}
    )


def test_what_an_adapter_wrapped_is_found_in_the_chain() -> None:
    error = wrapped(NoCredentialsError(), RetryableError("SQS GetQueueAttributes failed"))
    problem = access_problem(error)
    assert problem is not None
    assert problem.kind is Access.CREDENTIALS
    implicit = RetryableError("no cause, only context")
    implicit.__context__ = EndpointConnectionError(endpoint_url="http://h:1")
    assert access_problem(implicit) is not None


def test_a_denied_call_keeps_the_words_of_the_adapter_that_explains_it() -> None:
    error = wrapped(client_error("403", 403, "HeadBucket"), WorkerError("bucket b: not yours"))
    problem = access_problem(error)
    assert problem is not None
    assert problem.kind is Access.DENIED
    assert problem.line.startswith("access denied: HeadBucket: bucket b: not yours")


def test_other_failures_an_adapter_explained_are_left_to_it() -> None:
    missing = wrapped(client_error("QueueDoesNotExist"), ConfigError(["QUEUE_URL: no queue"]))
    assert access_problem(missing) is None
    assert access_problem(wrapped(client_error("InternalError", 500), WorkerError("x"))) is None
    assert access_problem(KeyError("bug")) is None


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NoRegionError(), 2),
        (client_error("ExpiredToken", 403), 2),
        (ValueError("Invalid endpoint: x"), 2),
        (EndpointConnectionError(endpoint_url="http://h:1"), 1),
        (client_error("AccessDenied", 403), 1),
        (ConfigError(["A: bad", "B: bad"]), 2),
        (WorkerError("failed"), 1),
    ],
)
def test_report_prints_one_line_per_problem_and_returns_the_exit_code(
    error: Exception, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report(error) == code
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == (2 if isinstance(error, ConfigError) else 1), err
    assert all(line.startswith("worker: ") for line in lines)


def test_report_raises_a_bug_again_with_its_traceback() -> None:
    with pytest.raises(KeyError):
        report(KeyError("a bug"))
