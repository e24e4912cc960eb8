"""docs/contract.md and docs/result-record.schema.json stay true to the code: the schema's fields
are the record's, every record the code can build validates, and the page names every setting
and every verb."""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.record_schema import SCHEMA_PATH, record_schema, schema_errors, validate_record
from worker import render
from worker.cli import build_parser
from worker.faces import Box, Candidate
from worker.matching import best_per_label
from worker.results import ResultRecord, Status, build_record
from worker.settings import Settings, Strategy

CONTRACT = SCHEMA_PATH.parent / "contract.md"


def minimal() -> ResultRecord:
    """A record with nothing optional: no notification id, not truncated."""
    return build_record(
        bucket="photos",
        key="uploads/a.jpg",
        version_id=None,
        etag="9b2cf535f27731c974343645a3985328",
        faces_detected=1,
        matches=[Candidate("alice", "references/alice.jpg", 99.0, Box(0.1, 0.2, 0.3, 0.4))],
        threshold=80,
        references=1,
        strategy="compare",
        duration_ms=5,
        now=datetime(2026, 11, 26, 22, 0, tzinfo=UTC),
    )


def test_the_schema_is_a_closed_draft_2020_12_schema() -> None:
    schema = record_schema()  # check_schema: a valid draft 2020-12 schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for part in (schema, schema["$defs"]["match"], schema["$defs"]["box"]):
        assert part["additionalProperties"] is False
        assert set(part["required"]) <= set(part["properties"])


def test_required_fields_are_the_ones_to_json_always_writes() -> None:
    schema = record_schema()
    plain = minimal()
    assert set(plain.to_json()) == set(schema["required"])
    full = ResultRecord.from_json(
        {**plain.with_notification_id().to_json(), "matches_truncated": True}
    )
    assert set(full.to_json()) == set(schema["properties"])
    match = schema["$defs"]["match"]
    assert set(plain.to_json()["matches"][0]) == set(match["required"]) == set(match["properties"])
    box = schema["$defs"]["box"]
    assert set(plain.to_json()["matches"][0]["face"]) == set(box["required"])


def test_the_enums_are_the_codes() -> None:
    properties = record_schema()["properties"]
    assert set(properties["status"]["enum"]) == {status.value for status in Status}
    assert set(properties["strategy"]["enum"]) == {strategy.value for strategy in Strategy}
    assert properties["schema"]["const"] == minimal().to_json()["schema"]


def test_the_schema_refuses_what_is_not_a_record() -> None:
    good = minimal().with_notification_id().to_json()
    validate_record(good)
    no_match = {**good, "status": "no_match", "matches": []}
    validate_record(no_match)
    bad = {
        "an unknown field": {**good, "extra": 1},
        "a missing field": {k: v for k, v in good.items() if k != "etag"},
        "matched without matches": {**good, "matches": []},
        "no_face with faces": {**no_match, "status": "no_face"},
        "no_match without faces": {**no_match, "faces_detected": 0},
        "a reason on a matched record": {**good, "reason": "why"},
        "invalid_image without a reason": {**no_match, "status": "invalid_image"},
        "a similarity over 100": {
            **good,
            "matches": [{**good["matches"][0], "similarity": 100.5}],
        },
        "a label with spaces around": {
            **good,
            "matches": [{**good["matches"][0], "label": " alice"}],
        },
        "a local time": {**good, "processed_at": "2026-11-26T22:00:00+01:00"},
        "a quoted etag": {**good, "etag": '"9b2c"'},
        "matches_truncated false": {**good, "matches_truncated": False},
        "a short notification id": {**good, "notification_id": "abc"},
        "another schema": {**good, "schema": "face-match-result/2"},
    }
    for why, doc in bad.items():
        assert schema_errors(doc), f"the schema accepts {why}"


# Labels as the label rule makes them (worker.references.label_for strips them, never empty).
labels = st.text(min_size=1, max_size=60).map(str.strip).filter(bool)
keys = st.text(min_size=1, max_size=200).filter(lambda k: len(k.encode("utf-8", "replace")) <= 1000)
candidates = st.builds(
    Candidate,
    label=labels,
    reference_key=keys.map(lambda k: "references/" + k),
    similarity=st.floats(min_value=0, max_value=100),
    face=st.builds(
        Box,
        left=st.floats(min_value=-0.5, max_value=1.5),
        top=st.floats(min_value=-0.5, max_value=1.5),
        width=st.floats(min_value=0, max_value=1),
        height=st.floats(min_value=0, max_value=1),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    key=keys,
    version_id=st.none() | st.text(min_size=1, max_size=40),
    etag=st.none() | st.from_regex(r"[0-9a-f]{32}(-[0-9]{1,4})?", fullmatch=True),
    faces=st.integers(min_value=0, max_value=100),
    found=st.lists(candidates, max_size=12),
    threshold=st.floats(min_value=0, max_value=100),
    references=st.integers(min_value=0, max_value=10_000),
    strategy=st.sampled_from(["compare", "collection", "auto"]),
    duration_ms=st.integers(min_value=0, max_value=10**7),
    invalid=st.none() | st.text(min_size=1, max_size=200),
    published=st.booleans(),
)
def test_every_record_build_record_makes_validates(
    key: str,
    version_id: str | None,
    etag: str | None,
    faces: int,
    found: list[Candidate],
    threshold: float,
    references: int,
    strategy: str,
    duration_ms: int,
    invalid: str | None,
    published: bool,
) -> None:
    """Inputs as the pipeline gives them (worker.pipeline._compute): matches come from
    best_per_label over what the faces matched, so none without a face; an invalid image has no
    faces, no matches and no references, and its strategy may be the configured ``auto``."""
    if invalid is not None:
        faces, found, references = 0, [], 0
    else:
        strategy = "compare" if strategy == "auto" else strategy  # auto runs one of the two
        found = found if faces else []
    record = build_record(
        bucket="photos",
        key="uploads/" + key,
        version_id=version_id,
        etag=etag,
        faces_detected=faces,
        matches=best_per_label(found, threshold),
        threshold=threshold,
        references=references,
        strategy=strategy,
        duration_ms=duration_ms,
        reason=invalid,
        invalid=invalid is not None,
    )
    if published:
        record = record.with_notification_id()
    doc = validate_record(json.loads(json.dumps(record.to_json())))
    assert ResultRecord.from_json(doc) == record
    message = json.loads(render.publication(record).message)
    validate_record(json.loads(message["sqs"]))


def test_a_record_cut_to_fit_sns_validates() -> None:
    many = [
        Candidate(f"person {i:05d}", f"references/{'x' * 200}/{i}.jpg", 99.0, Box(0, 0, 1, 1))
        for i in range(2000)
    ]
    record = build_record(
        bucket="photos",
        key="uploads/crowd.jpg",
        version_id=None,
        etag="e" * 32,
        faces_detected=100,
        matches=best_per_label(many, 80),
        threshold=80,
        references=2000,
        strategy="collection",
        duration_ms=1,
    ).with_notification_id()
    sent = validate_record(json.loads(json.loads(render.publication(record).message)["sqs"]))
    assert sent["matches_truncated"] is True
    assert 0 < len(sent["matches"]) < len(record.matches)


# ---------------------------------------------------------------------------- docs/contract.md


def contract_text() -> str:
    return CONTRACT.read_text(encoding="utf-8")


def test_the_contract_names_every_setting() -> None:
    text = contract_text()
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in text]
    assert not missing, f"docs/contract.md does not describe {missing}"


def test_the_contract_names_every_verb() -> None:
    text = contract_text()
    missing = [
        f"worker {' '.join(verb)}"
        for verb in _verbs(build_parser())
        if f"`worker {' '.join(verb)}" not in text
    ]
    assert not missing, f"docs/contract.md does not describe {missing}"


def _verbs(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every verb and sub-verb: ``("results",)``, ``("results", "show")``, …"""
    found: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(*path, name), *_verbs(sub, (*path, name))]
    return found


def test_the_contracts_example_record_validates() -> None:
    section = contract_text().split("## The result record", 1)[1]
    example = re.search(r"```json\n(.*?)\n```", section, re.DOTALL)
    assert example, "docs/contract.md has no example record"
    doc = validate_record(json.loads(example.group(1)))
    assert ResultRecord.from_json(doc).to_json() == doc
