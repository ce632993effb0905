"""ECR images measured as ECR measures them, and ECR requests recorded.

Stock moto derives an image's digest from its layer digests and reports the
config blob's size as imageSizeInBytes. ECR's API reference says the digest
is the manifest's sha256 and imageSizeInBytes the sum of the (compressed)
layers. This extension makes moto's images agree, so a test that mirrors a
push from the sandbox registry into moto (PutImage with the manifest) reads
back the digest and size the registry has.

Control endpoint (POST JSON):
- /_sandbox/ecr/requests {} returns the ECR requests received, in order, as
  {"operation", "body"} (tests count GetAuthorizationToken calls).
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from typing import Any

from moto.ecr import models as ecr_models
from moto.moto_server import werkzeug_app

LOCK = threading.Lock()
REQUESTS: list[dict[str, Any]] = []


def _create_digest(self: Any) -> None:
    self._image_digest = "sha256:" + hashlib.sha256(self.image_manifest.encode("utf-8")).hexdigest()


def get_image_size_in_bytes(self: Any) -> int | None:
    manifest = json.loads(self.image_manifest)
    if "layers" in manifest:
        return sum(int(layer.get("size", 0)) for layer in manifest["layers"])
    if "manifests" in manifest:
        # An index: ECR reports no size of its own.
        return None
    return None


ecr_models.Image._create_digest = _create_digest
ecr_models.Image.get_image_size_in_bytes = get_image_size_in_bytes

PREFIX = "/_sandbox/ecr/"
TARGET = "AmazonEC2ContainerRegistry_V20150921."
_orig_call = werkzeug_app.DomainDispatcherApplication.__call__


def _json(start_response: Any, status: str, payload: Any) -> list[bytes]:
    data = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    path = environ.get("PATH_INFO", "")
    if path.startswith(PREFIX):
        command = path[len(PREFIX):].strip("/")
        if command == "requests":
            with LOCK:
                return _json(start_response, "200 OK", list(REQUESTS))
        return _json(start_response, "404 Not Found", {"error": f"unknown sandbox ecr command {command!r}"})
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith(TARGET):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        with LOCK:
            REQUESTS.append({"operation": target[len(TARGET):], "body": body})
    return _orig_call(self, environ, start_response)


werkzeug_app.DomainDispatcherApplication.__call__ = _call
