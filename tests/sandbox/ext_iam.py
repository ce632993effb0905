"""IAM SimulatePrincipalPolicy, as a deploy's preflight asks it what a role may do.

Stock moto has no SimulatePrincipalPolicy (it answers "The
simulate_principal_policy action has not been implemented"). This extension
adds it (query protocol, Version 2010-05-08), as the IAM API reference
describes it:

- PolicySourceArn is a role, user or group ARN of moto's IAM backend (the
  caller's account); an unknown one is NoSuchEntity (HTTP 404) with moto's
  own messages: "Role <name> not found", "The user with name <name> cannot be
  found.", "Group <name> not found". An ARN that names no IAM role, user or
  group is InvalidInput (HTTP 400).
- The policies simulated are the principal's: its inline policies and
  attached managed policies (a user's also those of its groups), and a
  role's permissions boundary. Each statement is evaluated with moto's own
  evaluator (moto/iam/access_control.py, IAMPolicyStatement); an explicit
  Deny in any policy wins, else an Allow allows, else the decision is
  implicitDeny. With a permissions boundary an action is allowed only when
  the boundary allows it too (PermissionsBoundaryDecisionDetail says whether
  it did).
- ActionNames are matched case-insensitively and Resource/NotResource ARNs
  case-sensitively, with `*` and `?` wildcards, as IAM matches them.
- Condition blocks are evaluated against ContextEntries (moto's evaluator
  ignores them without context values): the String*, Arn*, Numeric*, Date*,
  Bool, IpAddress operators, their Not* forms, ...IfExists, Null and the
  ForAllValues/ForAnyValue qualifiers. As IAM does, a condition on a key
  absent from the context is false (true for ...IfExists, negated operators
  and ForAllValues), so an Allow that needs, say, iam:PassedToService is
  implicitDeny unless the caller supplies it; such keys are listed in
  MissingContextValues (each resource's in ResourceSpecificResults, and all
  of them at the top level).
- ResourceArns default to "*". As the current API reference says, there is
  one EvaluationResult per action, whatever the number of resources: its
  EvalDecision is the most restrictive decision over the resources
  (explicitDeny, then implicitDeny, then allowed), its MatchedStatements those
  of the resources so decided, and, when ResourceArns are
  given, ResourceSpecificResults holds each resource's own decision
  (EvalResourceDecision) and EvalDecisionDetails is present and empty.
  MatchedStatements lists the statements that decide (the denying ones for
  explicitDeny, the allowing ones for allowed, none for implicitDeny) with
  SourcePolicyId (the policy's name), SourcePolicyType (role | user | group
  for inline policies, aws-managed | user-managed for managed ones) and the
  statement's Start/EndPosition in the policy document.
- MaxItems/Marker paginate the results (IsTruncated, Marker).
- Every call is recorded for tests.

Guessed, where the reference is silent: the top-level EvalResourceName of a
result over several resources ("*"; with one resource, that resource); the
positions (1-based line and column of the statement's `{`, and of the
character after its `}`); the InvalidInput message; that a key absent from
the context is listed as missing whatever its operator (except Null); that
an unknown condition operator never matches; the legacy results shape
("results": "per-resource": one result per action and resource, each with
the aggregate decision, as the reference says the simulator answered
before). Policy variables (${aws:username}) are not substituted.
PolicyInputList, PermissionsBoundaryPolicyInputList, ResourcePolicy,
ResourceOwner, CallerArn and ResourceHandlingOption are accepted and
ignored.

Control (POST JSON):
- /_sandbox/iam/config {"simulate": "allow-simulation" | "access-denied",
  "results": "per-action" | "per-resource", "caller_arn": null | arn} sets
  what is given ({"reset": true} restores the defaults and clears the calls
  first) and returns the configuration in force. With "access-denied" every
  SimulatePrincipalPolicy answers HTTP 403 AccessDenied ("User: <caller_arn>
  is not authorized to perform: iam:SimulatePrincipalPolicy on resource:
  <PolicySourceArn> because no identity-based policy allows the
  iam:SimulatePrincipalPolicy action"), as AWS answers a deploy role without
  that permission; caller_arn defaults to
  arn:aws:sts::<account>:assumed-role/deploy/x.
- /_sandbox/iam/calls {} returns {"calls": [{"policy_source_arn", "actions",
  "resources", "outcome"}]} (outcome: "simulated" or the error code), oldest
  first; {"clear": true} empties the list after answering.
"""

from __future__ import annotations

import copy
import datetime
import ipaddress
import json
import re
import threading
import uuid
from typing import Any, Callable
from xml.sax.saxutils import escape

from moto.core.exceptions import ServiceException
from moto.iam import responses as iam_responses
from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.iam.exceptions import InvalidInput, NotFoundException
from moto.moto_server import werkzeug_app
from sandbox_control import handle_control

NS = "https://iam.amazonaws.com/doc/2010-05-08/"
DEFAULTS: dict[str, Any] = {"simulate": "allow-simulation", "results": "per-action", "caller_arn": None}
CONFIG: dict[str, Any] = copy.deepcopy(DEFAULTS)
CALLS: list[dict[str, Any]] = []
LOCK = threading.Lock()

ARN_RE = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):(role|user|group)/(?:.*/)?([^/]+)$")
RANK = {"allowed": 0, "implicitDeny": 1, "explicitDeny": 2}


class _Statement(IAMPolicyStatement):
    """moto's statement evaluator, with IAM's wildcard matching: `*` and `?`
    only (moto makes the pattern a regex, so `.` or `+` in an ARN would be
    regex syntax)."""

    @staticmethod
    def _match(pattern: str, string: str) -> re.Match[str] | None:
        return _glob_match(pattern, string)


def _lower(value: Any) -> Any:
    return [v.lower() for v in value] if isinstance(value, list) else value.lower()


def _glob_match(pattern: str, value: str) -> re.Match[str] | None:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.match(f"^{regex}$", value, re.DOTALL)


def _glob(pattern: str, value: str) -> bool:
    return _glob_match(pattern, value) is not None


def _number(v: str) -> float:
    return float(v)


def _date(v: str) -> float:
    v = str(v)
    if re.fullmatch(r"-?\d+(\.\d+)?", v):
        return float(v)
    return datetime.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()


def _ip(pattern: str, value: str) -> bool:
    return ipaddress.ip_address(value) in ipaddress.ip_network(pattern, strict=False)


# Positive operators: (context value, policy value) -> match. Each Not*
# operator is the negation of its positive operator.
OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda a, b: a == b,
    "StringEqualsIgnoreCase": lambda a, b: a.lower() == b.lower(),
    "StringLike": lambda a, b: _glob(b, a),
    "ArnEquals": lambda a, b: _glob(b, a),
    "ArnLike": lambda a, b: _glob(b, a),
    "Bool": lambda a, b: a.lower() == str(b).lower(),
    "NumericEquals": lambda a, b: _number(a) == _number(b),
    "NumericLessThan": lambda a, b: _number(a) < _number(b),
    "NumericLessThanEquals": lambda a, b: _number(a) <= _number(b),
    "NumericGreaterThan": lambda a, b: _number(a) > _number(b),
    "NumericGreaterThanEquals": lambda a, b: _number(a) >= _number(b),
    "DateEquals": lambda a, b: _date(a) == _date(b),
    "DateLessThan": lambda a, b: _date(a) < _date(b),
    "DateLessThanEquals": lambda a, b: _date(a) <= _date(b),
    "DateGreaterThan": lambda a, b: _date(a) > _date(b),
    "DateGreaterThanEquals": lambda a, b: _date(a) >= _date(b),
    "IpAddress": lambda a, b: _ip(b, a),
}
NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
           "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike",
           "NumericNotEquals": "NumericEquals", "DateNotEquals": "DateEquals", "NotIpAddress": "IpAddress"}


def _condition_met(operator: str, expected: Any, actual: list[str] | None) -> bool:
    """One operator on one condition key, as IAM evaluates it: a key absent
    from the context fails the condition, except with ...IfExists, a negated
    operator or ForAllValues; Null tests the key's absence."""
    expected = [str(e) for e in (expected if isinstance(expected, list) else [expected])]
    qualifier, _, op = operator.rpartition(":")
    if op == "Null":
        return (actual is None) == (expected[0].lower() == "true")
    if_exists = op.endswith("IfExists")
    op = op[: -len("IfExists")] if if_exists else op
    negated = op in NEGATED
    match = OPERATORS.get(NEGATED.get(op, op))
    if match is None:
        return False  # an operator this sandbox does not know never matches
    if actual is None:
        return if_exists or negated or qualifier == "ForAllValues"
    try:
        hits = [any(match(a, e) for e in expected) for a in actual]
    except (ValueError, TypeError):
        hits = [False for _ in actual]
    if qualifier == "ForAllValues":
        return all((not h) if negated else h for h in hits)
    if negated:
        return not any(hits)
    return any(hits)


def _statement_effect(statement: dict[str, Any], action: str, resource: str,
                      context: dict[str, list[str]]) -> tuple[str | None, list[str]]:
    """("Allow" | "Deny" | None, missing context keys): the effect when the
    statement applies to (action, resource) in this context."""
    stmt = dict(statement)
    for key in ("Action", "NotAction"):
        if key in stmt:
            stmt[key] = _lower(stmt[key])
    if "Action" not in stmt and "NotAction" not in stmt:
        return None, []
    if "NotResource" in stmt:
        if _Statement({"Resource": stmt.pop("NotResource")})._check_element_matches("Resource", resource):
            return None, []
        stmt["Resource"] = "*"
    if not stmt.get("Resource"):
        return None, []  # no resource: not an identity policy statement
    conditions = stmt.pop("Condition", None) or {}
    result = _Statement(stmt).is_action_permitted(action.lower(), resource)
    if result == PermissionResult.PERMITTED and stmt.get("Effect") == "Allow":
        effect: str | None = "Allow"
    elif result == PermissionResult.DENIED and stmt.get("Effect") == "Deny":
        effect = "Deny"
    else:
        return None, []
    missing: list[str] = []
    met = True
    for operator, keys in conditions.items():
        for key, expected in (keys or {}).items():
            actual = context.get(key.lower())
            if actual is None and not operator.endswith("Null") and key not in missing:
                missing.append(key)
            if not _condition_met(operator, expected, actual):
                met = False
    return (effect if met else None), missing


def _statement_spans(document: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each statement object in a policy document."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")

    def skip(i: int) -> int:
        return ws.match(document, i).end()  # type: ignore[union-attr]

    spans: list[tuple[int, int]] = []
    i = skip(0)
    if document[i:i + 1] != "{":
        return spans
    i = skip(i + 1)
    while i < len(document) and document[i] != "}":
        key, i = decoder.raw_decode(document, i)
        i = skip(skip(i) + 1)  # past ':'
        if key == "Statement" and document[i] == "[":
            i = skip(i + 1)
            while document[i] != "]":
                _, end = decoder.raw_decode(document, i)
                spans.append((i, end))
                i = skip(end)
                if document[i] == ",":
                    i = skip(i + 1)
            i += 1
        else:
            start = i
            _, i = decoder.raw_decode(document, i)
            if key == "Statement":
                spans.append((start, i))
        i = skip(i)
        if document[i:i + 1] == ",":
            i = skip(i + 1)
    return spans


def _position(document: str, offset: int) -> dict[str, int]:
    line = document.count("\n", 0, offset) + 1
    return {"Line": line, "Column": offset - (document.rfind("\n", 0, offset) + 1) + 1}


class _Policy:
    def __init__(self, policy_id: str, policy_type: str, document: str) -> None:
        self.id = policy_id
        self.type = policy_type
        self.document = document
        parsed = json.loads(document)
        statements = parsed.get("Statement", [])
        self.statements = statements if isinstance(statements, list) else [statements]
        try:
            spans = _statement_spans(document)
        except (ValueError, IndexError):
            spans = []
        self.spans = spans if len(spans) == len(self.statements) else [None] * len(self.statements)

    def matched(self, index: int) -> dict[str, Any]:
        out: dict[str, Any] = {"SourcePolicyId": self.id, "SourcePolicyType": self.type}
        span = self.spans[index]
        if span:
            out["StartPosition"] = _position(self.document, span[0])
            out["EndPosition"] = _position(self.document, span[1])
        return out


def _managed(policy: Any) -> _Policy:
    version = next(v for v in policy.versions if v.is_default)
    kind = "aws-managed" if ":iam::aws:policy" in policy.arn else "user-managed"
    return _Policy(policy.name, kind, version.document)


def _principal_policies(backend: Any, arn: str, account: str) -> tuple[list[_Policy], _Policy | None]:
    m = ARN_RE.match(arn or "")
    if not m:
        raise InvalidInput(f"ARN {arn} is not valid.")
    _, arn_account, kind, name = m.groups()
    if kind == "role":
        if arn_account != account:
            raise NotFoundException(f"Role {name} not found")
        role = backend.get_role(name)
        policies = [_Policy(n, "role", d) for n, d in role.policies.items()]
        policies += [_managed(p) for p in role.managed_policies.values()]
        boundary = _managed(backend.get_policy(role.permissions_boundary_arn)) if role.permissions_boundary_arn else None
        return policies, boundary
    if kind == "user":
        if arn_account != account:
            raise NotFoundException(f"The user with name {name} cannot be found.")
        user = backend.get_user(name)
        policies = [_Policy(n, "user", d) for n, d in user.policies.items()]
        policies += [_managed(p) for p in user.managed_policies.values()]
        for group in backend.get_groups_for_user(name):
            policies += [_Policy(n, "group", d) for n, d in group.policies.items()]
            policies += [_managed(p) for p in group.managed_policies.values()]
        return policies, None
    if arn_account != account:
        raise NotFoundException(f"Group {name} not found")
    group = backend.get_group(name)
    policies = [_Policy(n, "group", d) for n, d in group.policies.items()]
    policies += [_managed(p) for p in group.managed_policies.values()]
    return policies, None


def _evaluate(policies: list[_Policy], action: str, resource: str,
              context: dict[str, list[str]]) -> tuple[str, list[dict[str, Any]], list[str]]:
    allows: list[dict[str, Any]] = []
    denies: list[dict[str, Any]] = []
    missing: list[str] = []
    for policy in policies:
        for index, statement in enumerate(policy.statements):
            if not isinstance(statement, dict):
                continue
            effect, keys = _statement_effect(statement, action, resource, context)
            missing += [k for k in keys if k not in missing]
            if effect == "Deny":
                denies.append(policy.matched(index))
            elif effect == "Allow":
                allows.append(policy.matched(index))
    if denies:
        return "explicitDeny", denies, missing
    if allows:
        return "allowed", allows, missing
    return "implicitDeny", [], missing


def _decide(policies: list[_Policy], boundary: _Policy | None, action: str, resource: str,
            context: dict[str, list[str]]) -> dict[str, Any]:
    decision, matched, missing = _evaluate(policies, action, resource, context)
    out: dict[str, Any] = {"decision": decision, "matched": matched, "missing": missing}
    if boundary is not None:
        b_decision, b_matched, b_missing = _evaluate([boundary], action, resource, context)
        out["missing"] += [k for k in b_missing if k not in missing]
        out["boundary_allows"] = b_decision == "allowed"
        if decision != "explicitDeny" and b_decision == "explicitDeny":
            out["decision"], out["matched"] = "explicitDeny", b_matched
        elif decision == "allowed" and b_decision != "allowed":
            out["decision"], out["matched"] = "implicitDeny", []
    return out


def _x(tag: str, value: Any) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def _statements_xml(matched: list[dict[str, Any]]) -> str:
    members = []
    for s in matched:
        parts = [_x("SourcePolicyId", s["SourcePolicyId"]), _x("SourcePolicyType", s["SourcePolicyType"])]
        for key in ("StartPosition", "EndPosition"):
            if key in s:
                parts.append(f"<{key}>{_x('Line', s[key]['Line'])}{_x('Column', s[key]['Column'])}</{key}>")
        members.append(f"<member>{''.join(parts)}</member>")
    return f"<MatchedStatements>{''.join(members)}</MatchedStatements>"


def _boundary_xml(d: dict[str, Any]) -> str:
    if "boundary_allows" not in d:
        return ""
    allowed = "true" if d["boundary_allows"] else "false"
    return f"<PermissionsBoundaryDecisionDetail><AllowedByPermissionsBoundary>{allowed}</AllowedByPermissionsBoundary></PermissionsBoundaryDecisionDetail>"


def _dedup(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for s in statements:
        if s not in seen:
            seen.append(s)
    return seen


def _missing_xml(keys: list[str]) -> str:
    if not keys:
        return "<MissingContextValues/>"
    return "<MissingContextValues>" + "".join(_x("member", k) for k in keys) + "</MissingContextValues>"


def _results(policies: list[_Policy], boundary: _Policy | None, actions: list[str], resources: list[str] | None,
             context: dict[str, list[str]]) -> list[str]:
    listed = resources is not None
    resources = resources or ["*"]
    out = []
    for action in actions:
        per = [(r, _decide(policies, boundary, action, r, context)) for r in resources]
        worst = max((d["decision"] for _, d in per), key=RANK.__getitem__)
        matched = _dedup([s for _, d in per if d["decision"] == worst for s in d["matched"]])
        missing = list(dict.fromkeys(k for _, d in per for k in d["missing"]))
        agg: dict[str, Any] = {"decision": worst, "matched": matched}
        if boundary is not None:
            agg["boundary_allows"] = all(d["boundary_allows"] for _, d in per)
        specific = ""
        if listed:
            specific = "<ResourceSpecificResults>" + "".join(
                "<member>" + _x("EvalResourceName", r) + _x("EvalResourceDecision", d["decision"]) + _statements_xml(d["matched"])
                + _missing_xml(d["missing"]) + "<EvalDecisionDetails/>" + _boundary_xml(d) + "</member>"
                for r, d in per
            ) + "</ResourceSpecificResults>"
        names = [r for r, _ in per] if CONFIG["results"] == "per-resource" else [resources[0] if len(resources) == 1 else "*"]
        for name in names:
            out.append(
                "<member>" + _x("EvalActionName", action) + _x("EvalResourceName", name) + _x("EvalDecision", worst)
                + _statements_xml(matched) + _missing_xml(missing)
                + ("<EvalDecisionDetails/>" if listed else "")
                + _boundary_xml(agg) + specific + "</member>"
            )
    return out


def _list_param(response: Any, name: str) -> list[str] | None:
    value = response._get_param(name)  # moto parses query lists with the botocore model
    if isinstance(value, str):
        value = [value]
    return list(value) if value is not None else None


def _context(response: Any) -> dict[str, list[str]]:
    """ContextEntries as {lower-cased key: [values]} (IAM's context keys are case-insensitive)."""
    out: dict[str, list[str]] = {}
    for entry in response._get_param("ContextEntries") or []:
        name = entry.get("ContextKeyName")
        if name:
            out[name.lower()] = [str(v) for v in entry.get("ContextKeyValues") or []]
    return out


def _validation(field: str) -> ServiceException:
    err = ServiceException("ValidationError", f"1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null")
    return err


def simulate_principal_policy(self: Any) -> Any:
    arn = self._get_param("PolicySourceArn")
    actions = _list_param(self, "ActionNames")
    resources = _list_param(self, "ResourceArns")
    call = {"policy_source_arn": arn, "actions": actions or [], "resources": resources or ["*"], "outcome": "simulated"}
    with LOCK:
        CALLS.append(call)
        simulate, caller = CONFIG["simulate"], CONFIG["caller_arn"]
    try:
        if simulate == "access-denied":
            caller = caller or f"arn:aws:sts::{self.current_account}:assumed-role/deploy/x"
            call["outcome"] = "AccessDenied"
            message = (f"User: {caller} is not authorized to perform: iam:SimulatePrincipalPolicy on resource: {arn} "
                       "because no identity-based policy allows the iam:SimulatePrincipalPolicy action")
            body = (f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>AccessDenied</Code>'
                    f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
            return body, {"status": 403, "Content-Type": "text/xml"}
        if not arn:
            raise _validation("policySourceArn")
        if not actions:
            raise _validation("actionNames")
        policies, boundary = _principal_policies(self.backend, arn, self.current_account)
        results = _results(policies, boundary, actions, resources, _context(self))
    except ServiceException as e:
        call["outcome"] = e.code
        raise
    start = int(self._get_param("Marker") or 0)
    max_items = self._get_param("MaxItems")
    end = start + int(max_items) if max_items else len(results)
    page = results[start:end]
    truncated = end < len(results)
    marker = _x("Marker", end) if truncated else ""
    body = (f'<SimulatePrincipalPolicyResponse xmlns="{NS}"><SimulatePrincipalPolicyResult>'
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{marker}"
            f"<EvaluationResults>{''.join(page)}</EvaluationResults></SimulatePrincipalPolicyResult>"
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>")
    return body, {"status": 200, "Content-Type": "text/xml"}


iam_responses.IamResponse.simulate_principal_policy = simulate_principal_policy

PREFIX = "/_sandbox/iam/"


def _control(command: str, body: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        if command == "config":
            if body.get("reset"):
                CONFIG.clear()
                CONFIG.update(copy.deepcopy(DEFAULTS))
                CALLS.clear()
            for key, value in body.items():
                if key == "reset":
                    continue
                if key not in DEFAULTS:
                    raise KeyError(key)
                if key == "simulate" and value not in ("allow-simulation", "access-denied"):
                    raise ValueError("simulate is allow-simulation or access-denied")
                if key == "results" and value not in ("per-action", "per-resource"):
                    raise ValueError("results is per-action or per-resource")
                CONFIG[key] = value
            return dict(CONFIG)
        if command == "calls":
            out = {"calls": copy.deepcopy(CALLS)}
            if body.get("clear"):
                CALLS.clear()
            return out
    raise KeyError(command)


_orig_call = werkzeug_app.DomainDispatcherApplication.__call__


def _call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    answered = handle_control(environ, start_response, PREFIX, _control)
    if answered is not None:
        return answered
    return _orig_call(self, environ, start_response)


werkzeug_app.DomainDispatcherApplication.__call__ = _call
