"""What the sandbox extensions share: JSON answers and the `/_sandbox/<name>/`
control routes tests use to configure them (see tests/it/sandbox.rs,
`Moto::control`). Each extension chains moto's WSGI dispatcher and takes only
its own prefix.
"""

from __future__ import annotations

import json
from typing import Any, Callable


def json_response(start_response: Any, status: str, payload: Any, content_type: str = "application/json") -> list[bytes]:
    data = json.dumps(payload).encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return [data]


def handle_control(
    environ: dict[str, Any],
    start_response: Any,
    prefix: str,
    control: Callable[[str, dict[str, Any]], Any],
) -> list[bytes] | None:
    """Answers a request under `prefix` with `control(command, body)`, or
    returns None when the request is not for this extension. An unknown
    command (KeyError) is a 404; anything else that goes wrong, a 400 with
    the reason, so the test that asked sees it."""
    path = environ.get("PATH_INFO", "")
    if not path.startswith(prefix):
        return None
    name = prefix.strip("/").rsplit("/", 1)[-1]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        return json_response(start_response, "200 OK", control(path[len(prefix):].strip("/"), json.loads(raw or b"{}")))
    except KeyError as e:
        return json_response(start_response, "404 Not Found", {"error": f"unknown sandbox {name} command or field {e}"})
    except Exception as e:  # noqa: BLE001 - report anything to the test that asked
        return json_response(start_response, "400 Bad Request", {"error": repr(e)})
