"""The result record's JSON Schema (docs/result-record.schema.json): every record a test reads —
from ``results/``, from the SNS message, from ``build_record`` — is checked against it."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "result-record.schema.json"


@functools.cache
def record_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return schema


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(record_schema())


def schema_errors(doc: Any) -> list[str]:
    """Every way ``doc`` breaks the schema, one line each (empty when it is a valid record)."""
    return [
        f"{error.json_path}: {error.message}"
        for error in sorted(_validator().iter_errors(doc), key=lambda e: list(e.path))
    ]


def validate_record(doc: Any) -> Any:
    """``doc``, after asserting it is a valid result record (AssertionError listing why not)."""
    errors = schema_errors(doc)
    assert not errors, f"not a valid result record ({SCHEMA_PATH.name}):\n" + "\n".join(
        [*errors, json.dumps(doc, ensure_ascii=False)[:2000]]
    )
    return doc
