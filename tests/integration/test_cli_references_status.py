"""`worker references add|remove`, `worker upload` and `worker status` / `worker results` before
any result, and their error paths, in subprocesses against `worker embedded` (no `worker run`)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

from tests.integration.cli_stack import EmbeddedStack, one_line_error, point_here, run_main
from worker.cli import main
from worker.local.samples import ASTRONAUT, GRACE_HOPPER, package_file

pytestmark = pytest.mark.slow

BUCKET = "cli-references"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    workdir = tmp_path_factory.mktemp("cli-references")
    (workdir / "eileen.png").write_bytes(package_file(*ASTRONAUT))
    (workdir / "grace.jpg").write_bytes(package_file(*GRACE_HOPPER))
    (workdir / "notes.jpg").write_text("not a photo\n")
    (workdir / "grace.gif").write_bytes(b"GIF89a")
    stack = EmbeddedStack(workdir, BUCKET)
    yield stack
    stack.stop()


def _client(stack: EmbeddedStack, service: str) -> object:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=stack.env["AWS_ENDPOINT_URL"],
        region_name=stack.env["AWS_REGION"],
        aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=None,
    )


def _reference_keys(stack: EmbeddedStack) -> list[str]:
    listed = _client(stack, "s3").list_objects_v2(Bucket=BUCKET, Prefix="references/")  # type: ignore[attr-defined]
    return [obj["Key"] for obj in listed.get("Contents", [])]


@pytest.fixture
def in_stack(stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch) -> EmbeddedStack:
    """This process pointed at the stack, for running `worker.cli.main` in-process (usage and
    configuration errors, which fail before or at their first AWS call)."""
    point_here(stack, monkeypatch)
    return stack


def test_add_puts_photos_under_their_label_and_remove_takes_them_away(
    stack: EmbeddedStack,
) -> None:
    added = stack.worker("references", "add", "eileen.png", "grace.jpg", "--label", "ada")
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines() == [
        f"added eileen.png as s3://{BUCKET}/references/ada/eileen.png (label ada)",
        f"added grace.jpg as s3://{BUCKET}/references/ada/grace.jpg (label ada)",
    ]
    assert stack.worker("references", "add", "grace.jpg", "--label", "bo").returncode == 0
    assert _reference_keys(stack) == [
        "references/ada/eileen.png",
        "references/ada/grace.jpg",
        "references/bo/grace.jpg",
    ]
    removed = stack.worker("references", "remove", "--label", "ada")
    assert removed.returncode == 0, removed.stderr
    assert len(removed.stdout.splitlines()) == 2
    by_key = stack.worker("references", "remove", "references/bo/grace.jpg")
    assert by_key.stdout == f"removed s3://{BUCKET}/references/bo/grace.jpg (label bo)\n"
    assert _reference_keys(stack) == []


def test_add_refuses_a_bad_label_in_one_line_before_uploading_anything(
    stack: EmbeddedStack,
) -> None:
    proc = stack.worker("references", "add", "eileen.png", "grace.jpg", "--label", "a/b")
    assert "cannot contain '/'" in one_line_error(proc, 2)
    assert _reference_keys(stack) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["grace.jpg", "--label", " ada"], "cannot start or end with spaces"),
        (["grace.jpg", "--label", ""], "must not be empty"),
        (["grace.gif", "--label", "ada"], "name ends with .jpeg/.jpg/.png"),
        (["notes.jpg", "--label", "ada"], "not a JPEG or PNG image"),
        (["missing.jpg", "--label", "ada"], "no such file: missing.jpg"),
    ],
)
def test_add_refuses_a_bad_label_or_file(
    in_stack: EmbeddedStack, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    # The good photo first: nothing at all is uploaded when one argument is wrong.
    code, _, err = run_main(capsys, "references", "add", "eileen.png", *args)
    assert code == 2 and len(err.splitlines()) == 1 and says in err
    assert _reference_keys(in_stack) == []


def test_remove_of_a_missing_photo_is_one_line_exit_1(stack: EmbeddedStack) -> None:
    proc = stack.worker("references", "remove", "references/nobody/1.jpg")
    assert "no reference photo s3://" in one_line_error(proc, 1)


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--label", "nobody"], 1, "no reference photos labelled 'nobody'"),
        (["uploads/photo.jpg"], 2, "is not a reference photo"),
        ([], 2, "give either --label NAME or KEY"),
        (["--label", "x", "references/x.jpg"], 2, "give either --label NAME or KEY"),
    ],
)
def test_remove_says_what_is_wrong_in_one_line(
    in_stack: EmbeddedStack,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    says: str,
) -> None:
    got, _, err = run_main(capsys, "references", "remove", *args)
    assert got == code and len(err.splitlines()) == 1 and says in err


def test_before_any_result_results_says_so_and_show_fails(
    stack: EmbeddedStack, in_stack: EmbeddedStack, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = stack.worker("results")
    assert empty.returncode == 0 and empty.stdout == ""
    assert "no results under" in empty.stderr
    code, _, err = run_main(capsys, "results", "show", "uploads/a.jpg")
    assert code == 1 and len(err.splitlines()) == 1 and "no result for" in err


def test_upload_errors_are_one_line(
    stack: EmbeddedStack, in_stack: EmbeddedStack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "no such file: nope.jpg" in one_line_error(stack.worker("upload", "nope.jpg"), 2)
    code, _, err = run_main(capsys, "upload", "eileen.png", "grace.jpg", "--key", "x.jpg")
    assert code == 2 and "--key names one upload" in err


def test_upload_wait_without_a_worker_gives_up_after_the_timeout(stack: EmbeddedStack) -> None:
    proc = stack.worker(
        "upload", "grace.jpg", "--key", "lonely/grace.jpg", "--wait", "--timeout", "1"
    )
    assert proc.stdout == f"uploaded grace.jpg to s3://{BUCKET}/uploads/lonely/grace.jpg\n"
    assert "no result for uploads/lonely/grace.jpg within 1 s" in one_line_error(proc, 1)


def test_status_tells_the_dead_letters_age_and_the_missing_collection(
    stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = _client(stack, "sqs")
    for body in ("first", "second"):
        sqs.send_message(QueueUrl=stack.env["DLQ_URL"], MessageBody=body)  # type: ignore[attr-defined]
    proc = stack.worker("status", "--json")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    dead = status["dead_letter_queue"]
    assert dead["messages"] == 2
    assert 0 <= dead["oldest_age_seconds"] < 60
    assert status["collection"] == {
        "id": "face-match-references",
        "strategy": "auto",
        "exists": False,
        "faces": 0,
    }
    assert status["results"]["total"] == 0
    # The look put them back: the dead-letter queue still holds both, visible.
    attributes = sqs.get_queue_attributes(  # type: ignore[attr-defined]
        QueueUrl=stack.env["DLQ_URL"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "2"
    text = stack.worker("status", "--no-dlq-age")
    assert (
        "Dead letters  cli-references-uploads-dlq: 2 messages (oldest not measured" in text.stdout
    )


def test_a_missing_bucket_is_one_line_exit_2(stack: EmbeddedStack) -> None:
    proc = stack.worker("results", BUCKET_NAME="no-such-bucket")
    assert "bucket 'no-such-bucket' does not exist" in one_line_error(proc, 2)


@pytest.mark.parametrize(
    ("verb", "env", "says"),
    [
        (["results"], {"BUCKET_NAME": ""}, "BUCKET_NAME: required but not set"),
        (["status"], {"QUEUE_URL": ""}, "QUEUE_URL: required but not set"),
        (["upload", "grace.jpg"], {"BUCKET_NAME": "no-such-bucket"}, "does not exist"),
        (["references", "add", "grace.jpg", "--label", "x"], {"BUCKET_NAME": ""}, "BUCKET_NAME"),
        (["results", "show", "uploads/x.jpg"], {"BUCKET_NAME": ""}, "BUCKET_NAME"),
    ],
)
def test_bad_configuration_is_one_line_exit_2(
    in_stack: EmbeddedStack,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    verb: list[str],
    env: dict[str, str],
    says: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, err = run_main(capsys, *verb)
    assert code == 2 and len(err.splitlines()) == 1 and says in err


@pytest.mark.parametrize(
    "verb",
    [
        ["results"],
        ["results", "show"],
        ["upload"],
        ["status"],
        ["references", "add"],
        ["references", "remove"],
    ],
)
def test_every_new_verb_has_help(verb: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*verb, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: worker ") and len(out) > 300, out
