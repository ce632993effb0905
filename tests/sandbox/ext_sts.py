"""STS AssumeRoleWithWebIdentity as a GitHub Actions OIDC federation uses it.

Stock moto answers AssumeRoleWithWebIdentity without looking at the token or
validating its parameters. This extension, as the STS API reference says:

- rejects a DurationSeconds outside 900-43200 (ValidationError, "1 validation
  error detected: Value '<n>' at 'durationSeconds' failed to satisfy
  constraint: Member must have value greater than or equal to 900" / "less
  than or equal to 43200"), a RoleSessionName outside `[\\w+=,.@-]{2,64}`,
  and a WebIdentityToken that is not a JWT (InvalidIdentityToken, "Couldn't
  parse the web identity token"), or whose `aud` is not the configured
  audience (InvalidIdentityToken, "Incorrect token audience");
- records every call (role, session name, duration, the token's claims) for
  tests;
- can shorten every session: credentials then expire `session_seconds` after
  they are issued, whatever DurationSeconds asked, so a test can watch a
  run outlive its session (time in the sandbox runs faster, as for the other
  extensions).

Control (POST JSON):
- /_sandbox/sts/config {"session_seconds": 3 | null, "audience": "sts.amazonaws.com"}
  returns the configuration in force.
- /_sandbox/sts/calls {} returns {"calls": [{"role_arn", "session_name",
  "duration", "claims", "expiration"}]}.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import threading
from typing import Any

from moto.core.exceptions import ServiceException
from moto.moto_server import werkzeug_app
from moto.sts import models as sts_models
from moto.sts import responses as sts_responses
from sandbox_control import handle_control

CONFIG: dict[str, Any] = {"session_seconds": None, "audience": "sts.amazonaws.com"}
CALLS: list[dict[str, Any]] = []
LOCK = threading.Lock()


class StsError(ServiceException):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


def _claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise StsError("InvalidIdentityToken", "Couldn't parse the web identity token")
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        return json.loads(base64.urlsafe_b64decode(padded))
    except ValueError as e:
        raise StsError("InvalidIdentityToken", "Couldn't parse the web identity token") from e


_orig_response = sts_responses.TokenResponse.assume_role_with_web_identity
_orig_assume_role = sts_models.STSBackend.assume_role


def assume_role_with_web_identity(self: Any) -> Any:
    """The response layer: validates as STS does, then records the call with the token's claims."""
    duration = self._get_int_param("DurationSeconds", 3600)
    session = self._get_param("RoleSessionName") or ""
    token = self._get_param("WebIdentityToken") or ""
    if duration < 900:
        raise StsError("ValidationError", f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900")
    if duration > 43200:
        raise StsError("ValidationError", f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200")
    if not re.fullmatch(r"[\w+=,.@-]{2,64}", session):
        raise StsError("ValidationError", f"1 validation error detected: Value '{session}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*")
    claims = _claims(token)
    if CONFIG["audience"] and claims.get("aud") != CONFIG["audience"]:
        raise StsError("InvalidIdentityToken", "Incorrect token audience")
    answer = _orig_response(self)
    with LOCK:
        if CALLS:
            CALLS[-1]["claims"] = claims
    return answer


def assume_role_with_web_identity_model(self: Any, **kwargs: Any) -> Any:
    """The backend: a session that lasts `session_seconds` when set."""
    role = _orig_assume_role(self, **kwargs)
    with LOCK:
        if CONFIG["session_seconds"]:
            role.expiration = sts_models.utcnow() + datetime.timedelta(seconds=float(CONFIG["session_seconds"]))
        CALLS.append({"role_arn": kwargs.get("role_arn"), "session_name": kwargs.get("role_session_name"), "duration": kwargs.get("duration"),
                      "expiration": role.expiration.isoformat()})
    return role


sts_models.STSBackend.assume_role_with_web_identity = assume_role_with_web_identity_model
sts_responses.TokenResponse.assume_role_with_web_identity = assume_role_with_web_identity

PREFIX = "/_sandbox/sts/"


def _control(command: str, body: dict[str, Any]) -> dict[str, Any]:
    with LOCK:
        if command == "config":
            for key, value in body.items():
                if key not in CONFIG:
                    raise KeyError(key)
                CONFIG[key] = value
            return dict(CONFIG)
        if command == "calls":
            return {"calls": [dict(c) for c in CALLS]}
    raise KeyError(command)


_orig_call = werkzeug_app.DomainDispatcherApplication.__call__


def _call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    answered = handle_control(environ, start_response, PREFIX, _control)
    if answered is not None:
        return answered
    return _orig_call(self, environ, start_response)


werkzeug_app.DomainDispatcherApplication.__call__ = _call
