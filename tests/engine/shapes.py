"""Validate raw Rekognition answers against botocore's service model.

:func:`problems` walks an operation's output shape over the JSON body the engine sent (before
botocore's parser, which silently drops unknown members) and lists every break of the model:
unknown or missing required members, wrong types, enum values, ranges, lengths and patterns.
:func:`check_answers` hooks it onto a boto3 client so that every answer of every test is checked.
"""

from __future__ import annotations

import json
import re
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape

MODEL = botocore.session.get_session().get_service_model("rekognition")


def _range(path: str, value: float, meta: dict[str, Any], what: str) -> list[str]:
    out = []
    if "min" in meta and value < meta["min"]:
        out.append(f"{path}: {what} {value} < min {meta['min']}")
    if "max" in meta and value > meta["max"]:
        out.append(f"{path}: {what} {value} > max {meta['max']}")
    return out


def _walk(shape: Shape, value: Any, path: str) -> list[str]:
    kind = shape.type_name
    meta = shape.metadata
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        out = [f"{path}.{name}: unknown member" for name in value if name not in shape.members]
        out += [
            f"{path}.{name}: required member missing"
            for name in shape.required_members
            if name not in value
        ]
        for name, member in shape.members.items():
            if name in value:
                out += _walk(member, value[name], f"{path}.{name}")
        return out
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        out = _range(path, len(value), meta, "length")
        for index, item in enumerate(value):
            out += _walk(shape.member, item, f"{path}[{index}]")
        return out
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            return [f"{path}: expected a map"]
        out = []
        for key, item in value.items():
            out += _walk(shape.key, key, f"{path}<key>")
            out += _walk(shape.value, item, f"{path}[{key!r}]")
        return out
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string, got {type(value).__name__}"]
        enum, pattern = getattr(shape, "enum", None) or [], meta.get("pattern")
        return [
            *_range(path, len(value), meta, "length"),
            *([f"{path}: {value!r} not in enum {enum}"] if enum and value not in enum else []),
            *(
                [f"{path}: {value!r} does not match {pattern}"]
                if pattern and not re.fullmatch(pattern, value)
                else []
            ),
        ]
    if kind in {"integer", "long"}:
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: expected an integer, got {type(value).__name__}"]
        return _range(path, value, meta, "value")
    if kind in {"float", "double"}:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"{path}: expected a number, got {type(value).__name__}"]
        return _range(path, value, meta, "value")
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean"]
    if kind == "timestamp":
        return [] if isinstance(value, int | float) else [f"{path}: expected epoch seconds"]
    if kind == "blob":
        return [] if isinstance(value, str) else [f"{path}: expected base64 text"]
    return [f"{path}: unhandled shape type {kind}"]


def problems(operation: str, body: dict[str, Any]) -> list[str]:
    """Every way ``body`` (the raw JSON answer of ``operation``) breaks botocore's model."""
    shape = MODEL.operation_model(operation).output_shape
    if shape is None:
        return [] if body == {} else [f"{operation}: answer for an operation without output"]
    return _walk(shape, body, operation)


def check_answers(client: Any) -> Any:
    """Make ``client`` fail any call whose successful raw answer breaks the model."""

    def check(http_response: Any, model: Any, **_: Any) -> None:
        if http_response.status_code != 200:
            return
        found = problems(model.name, json.loads(http_response.content or b"{}"))
        if found:
            raise AssertionError("answer breaks the service model:\n" + "\n".join(found))

    client.meta.events.register("after-call.rekognition", check)
    return client
