"""Load Terraform files with python-hcl2 into plain dicts: unquoted labels and strings.

python-hcl2 ≥ 7 keeps HCL's quotes unless asked not to; older releases strip them. Either way
the tests see ``{"resource": {"aws_sqs_queue": {"uploads": {...}}}}`` with string values as
written between the quotes (``"${var.upload_prefix}"`` for an interpolation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "deploy" / "terraform" / "modules" / "face-match-worker"
EXAMPLE = ROOT / "deploy" / "terraform" / "examples" / "complete"


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _clean(node: Any) -> Any:
    if isinstance(node, dict):
        return {_unquote(k): _clean(v) for k, v in node.items() if not str(k).startswith("__")}
    if isinstance(node, list):
        return [_clean(item) for item in node]
    return _unquote(node)


def _load_file(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        options_cls = getattr(hcl2, "SerializationOptions", None)
        if options_cls is not None:
            options = options_cls(
                strip_string_quotes=True, with_comments=False, explicit_blocks=False
            )
            raw = hcl2.load(handle, serialization_options=options)
        else:
            raw = hcl2.load(handle)
    cleaned: dict[str, Any] = _clean(raw)
    return cleaned


class Config:
    """Every top-level block of one Terraform directory, merged across its ``*.tf`` files."""

    def __init__(self, directory: Path) -> None:
        self.files = {path.name: _load_file(path) for path in sorted(directory.glob("*.tf"))}
        self.blocks: dict[str, list[Any]] = {}
        for parsed in self.files.values():
            for kind, items in parsed.items():
                self.blocks.setdefault(kind, []).extend(items)

    def _typed(self, kind: str, type_: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for item in self.blocks.get(kind, []):
            for name, body in item.get(type_, {}).items():
                found[name] = body
        return found

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return self._typed("resource", type_)

    def resource(self, type_: str, name: str) -> dict[str, Any]:
        return self.resources(type_)[name]

    def data(self, type_: str) -> dict[str, dict[str, Any]]:
        return self._typed("data", type_)

    @property
    def locals(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for item in self.blocks.get("locals", []):
            merged.update(item)
        return merged

    def _named(self, kind: str) -> dict[str, dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for item in self.blocks.get(kind, []):
            merged.update(item)
        return merged

    @property
    def variables(self) -> dict[str, dict[str, Any]]:
        return self._named("variable")

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        return self._named("output")

    @property
    def modules(self) -> dict[str, dict[str, Any]]:
        return self._named("module")


def one(value: Any) -> Any:
    """A nested block is a list of one dict in python-hcl2's output."""
    if isinstance(value, list):
        assert len(value) == 1, value
        return value[0]
    return value
