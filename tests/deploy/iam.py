"""Just enough of IAM's policy evaluation to judge the module's policies offline.

Policies come from the Terraform (``data "aws_iam_policy_document"`` blocks, read with python-hcl2,
their ``${...}`` references resolved for one deployment) or from JSON (what `worker setup` writes);
both become the same :class:`Statement` tuples, so they can be compared and evaluated alike.

The semantics implemented, each as AWS documents it (docs/aws-semantics.md, "IAM"):

- an explicit Deny wins, an Allow is needed, anything else is an implicit deny
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html);
- actions match case-insensitively, with ``*`` and ``?`` wildcards;
- resources match as ARNs: "You can use wildcard characters (* and ?) within the individual
  segments of an ARN (the parts separated by colons) ... If the * wildcard is the last character of a
  resource ARN segment, it can expand to match beyond the colon boundaries"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html);
- conditions: every operator block must hold (AND), any of its values may match (OR), condition key
  names are case-insensitive, and "If the key that you specify in a policy condition is not present
  in the request context, the values do not match and the condition is false"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
  The operators used here are implemented; any other one is refused rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.deploy.hcl import Config

ALLOW, DENY = "Allow", "Deny"


@dataclass(frozen=True)
class Condition:
    operator: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()
    principals: tuple[tuple[str, str], ...] = ()  # (type, identifier); none in identity policies

    def canonical(self) -> tuple[Any, ...]:
        """What the statement means, whatever its Sid and the order of its lists."""
        return (
            self.effect,
            tuple(sorted(a.lower() for a in self.actions)),
            tuple(sorted(self.resources)),
            tuple(
                sorted(
                    (c.operator, c.key.lower(), tuple(sorted(c.values))) for c in self.conditions
                )
            ),
            tuple(sorted(self.principals)),
        )


Policy = tuple[Statement, ...]


@dataclass(frozen=True)
class Request:
    """One authorisation AWS makes: ``action`` on ``resource`` with the request's context keys."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)
    principal: tuple[str, str] | None = (
        None  # for resource policies: ("Service", "s3.amazonaws.com")
    )
    why: str = ""


# ------------------------------------------------------------------------------------- parsing


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def from_json(document: Mapping[str, Any]) -> Policy:
    """A policy document as AWS reads it (Action/Resource may be a string or a list)."""
    statements = []
    for index, raw in enumerate(document.get("Statement", [])):
        principal = raw.get("Principal", {})
        principals = (
            (("*", "*"),)
            if principal == "*"
            else tuple((kind, ident) for kind, ids in principal.items() for ident in _strings(ids))
        )
        conditions = tuple(
            Condition(operator, key, _strings(values))
            for operator, keys in raw.get("Condition", {}).items()
            for key, values in keys.items()
        )
        statements.append(
            Statement(
                sid=raw.get("Sid", str(index)),
                effect=raw["Effect"],
                actions=_strings(raw.get("Action")),
                resources=_strings(raw.get("Resource")),
                conditions=conditions,
                principals=principals,
            )
        )
    return tuple(statements)


class Resolver:
    """Replaces the ``${...}`` references of Terraform strings with one deployment's values.

    ``values`` names what only an apply knows (resource attributes, data sources); ``var.*`` come
    from ``values`` or the variable's default, ``local.*`` from the module's locals, resolved in
    turn. A reference it cannot resolve is an error: the test must say what it assumed.
    """

    _REFERENCE = re.compile(r"\$\{([^}]+)\}")

    def __init__(self, tf: Config, values: Mapping[str, str]) -> None:
        self._tf, self._values = tf, dict(values)

    def __call__(self, text: str) -> str:
        return self._REFERENCE.sub(lambda m: self._value(m.group(1).strip()), text)

    def _value(self, expression: str) -> str:
        if expression in self._values:
            return self._values[expression]
        kind, _, name = expression.partition(".")
        if kind == "var" and "default" in self._tf.variables.get(name, {}):
            return str(self._tf.variables[name]["default"])
        if kind == "local" and name in self._tf.locals:
            return self(str(self._tf.locals[name]))
        raise KeyError(f"cannot resolve ${{{expression}}}: give its value to the Resolver")


def from_terraform(document: Mapping[str, Any], resolve: Callable[[str], str]) -> Policy:
    """A ``data "aws_iam_policy_document"`` block as python-hcl2 reads it."""
    statements = []
    for index, raw in enumerate(document.get("statement", [])):

        def strings(name: str, block: Mapping[str, Any] = raw) -> tuple[str, ...]:
            return tuple(resolve(str(v)) for v in block.get(name, []))

        statements.append(
            Statement(
                sid=raw.get("sid", str(index)),
                effect=raw.get("effect", ALLOW),
                actions=strings("actions"),
                resources=strings("resources"),
                conditions=tuple(
                    Condition(c["test"], resolve(c["variable"]), strings("values", c))
                    for c in raw.get("condition", [])
                ),
                principals=tuple(
                    (p["type"], resolve(str(ident)))
                    for p in raw.get("principals", [])
                    for ident in p["identifiers"]
                ),
            )
        )
    return tuple(statements)


# ---------------------------------------------------------------------------------- evaluation


def _glob(pattern: str, *, within_segments: bool) -> re.Pattern[str]:
    out = []
    for index, char in enumerate(pattern):
        if char == "*":
            last_of_segment = index + 1 == len(pattern) or pattern[index + 1] == ":"
            out.append("[^:]*" if within_segments and not last_of_segment else ".*")
        elif char == "?":
            out.append("[^:]" if within_segments else ".")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    return _glob(pattern.lower(), within_segments=False).fullmatch(action.lower()) is not None


def resource_matches(pattern: str, arn: str) -> bool:
    return pattern == "*" or _glob(pattern, within_segments=True).fullmatch(arn) is not None


def _condition_holds(condition: Condition, context: Mapping[str, str]) -> bool:
    lowered = {k.lower(): v for k, v in context.items()}
    if condition.key.lower() not in lowered:
        return False  # "the values do not match and the condition is false"
    value = lowered[condition.key.lower()]
    operator = condition.operator
    if operator in {"StringEquals", "ArnEquals"}:
        return value in condition.values
    if operator == "StringLike":
        return any(_glob(v, within_segments=False).fullmatch(value) for v in condition.values)
    if operator == "ArnLike":
        return any(resource_matches(v, value) for v in condition.values)
    if operator == "Bool":
        return value.lower() in {v.lower() for v in condition.values}
    raise NotImplementedError(f"condition operator {operator} is not implemented here")


def _principal_matches(statement: Statement, principal: tuple[str, str] | None) -> bool:
    if not statement.principals:
        return True  # identity-based policy: the principal is whoever holds it
    if principal is None:
        return False
    return any(p in {("*", "*"), principal} for p in statement.principals)


def applies(statement: Statement, request: Request) -> bool:
    return (
        any(action_matches(a, request.action) for a in statement.actions)
        and any(resource_matches(r, request.resource) for r in statement.resources)
        and all(_condition_holds(c, request.context) for c in statement.conditions)
        and _principal_matches(statement, request.principal)
    )


def decide(policy: Iterable[Statement], request: Request) -> str:
    """ "Allow", "Deny" (explicit) or "ImplicitDeny"."""
    matching = [s for s in policy if applies(s, request)]
    if any(s.effect == DENY for s in matching):
        return DENY
    return ALLOW if matching else "ImplicitDeny"


def grants(policy: Iterable[Statement]) -> set[tuple[str, str, str]]:
    """Every (Sid, action, resource pattern) an Allow statement grants."""
    return {
        (s.sid, action, resource)
        for s in policy
        if s.effect == ALLOW
        for action in s.actions
        for resource in s.resources
    }


def used_grants(policy: Iterable[Statement], request: Request) -> set[tuple[str, str, str]]:
    """The grants of :func:`grants` that allow ``request``."""
    found = set()
    for statement in policy:
        if statement.effect != ALLOW or not applies(statement, request):
            continue
        for action in statement.actions:
            for resource in statement.resources:
                if action_matches(action, request.action) and resource_matches(
                    resource, request.resource
                ):
                    found.add((statement.sid, action, resource))
    return found
