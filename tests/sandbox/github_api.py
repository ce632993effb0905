"""A stateful stand-in for the parts of the GitHub REST API fastdeploy uses:
deployments and their statuses, and issue (pull request) comments.

Loaded by receiver.py with `--github`. State lives in memory, so a second
run against the same receiver sees the deployments and comments of the
first, as it would on GitHub (the idempotence tests rely on that). Paths may
carry the GitHub Enterprise Server prefix `/api/v3`.
"""

from __future__ import annotations

import datetime
import re
import threading

LOCK = threading.Lock()
DEPLOYMENTS: list[dict] = []
STATUSES: dict[int, list[dict]] = {}
COMMENTS: dict[int, list[dict]] = {}
NEXT = [1000]


def _id() -> int:
    NEXT[0] += 1
    return NEXT[0]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


USER = {"login": "github-actions[bot]", "id": 41898282, "type": "Bot", "site_admin": False}


def handle(method: str, path: str, query: dict, body) -> tuple[int, object] | None:
    """Answers a request, or None when the path is not one we emulate."""
    path = re.sub(r"^/api/v3", "", path)
    m = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)", path)
    if not m:
        return None
    owner, repo, rest = m.groups()
    base = f"https://api.github.com/repos/{owner}/{repo}"
    with LOCK:
        if rest == "/deployments" and method == "GET":
            items = [d for d in DEPLOYMENTS if d["_repo"] == (owner, repo)]
            for key in ("sha", "ref", "environment", "task"):
                if key in query:
                    items = [d for d in items if d.get(key) == query[key]]
            return 200, [_public(d) for d in reversed(items)]
        if rest == "/deployments" and method == "POST":
            body = body or {}
            if not body.get("ref"):
                return 422, {"message": "Validation Failed", "errors": [{"field": "ref", "code": "missing_field"}]}
            did = _id()
            d = {
                "_repo": (owner, repo),
                "id": did,
                "node_id": f"DE_{did}",
                "url": f"{base}/deployments/{did}",
                "statuses_url": f"{base}/deployments/{did}/statuses",
                "repository_url": base,
                "sha": body.get("sha") or body["ref"],
                "ref": body["ref"],
                "task": body.get("task", "deploy"),
                "payload": body.get("payload", {}),
                "original_environment": body.get("environment", "production"),
                "environment": body.get("environment", "production"),
                "description": body.get("description"),
                "creator": USER,
                "created_at": _now(),
                "updated_at": _now(),
                "transient_environment": body.get("transient_environment", False),
                "production_environment": body.get("production_environment", False),
            }
            DEPLOYMENTS.append(d)
            STATUSES[did] = []
            return 201, _public(d)
        m2 = re.fullmatch(r"/deployments/(\d+)/statuses", rest)
        if m2:
            did = int(m2.group(1))
            if did not in STATUSES:
                return 404, {"message": "Not Found"}
            if method == "GET":
                return 200, list(reversed(STATUSES[did]))
            if method == "POST":
                body = body or {}
                sid = _id()
                s = {
                    "id": sid,
                    "node_id": f"DES_{sid}",
                    "url": f"{base}/deployments/{did}/statuses/{sid}",
                    "state": body.get("state"),
                    "description": body.get("description", ""),
                    "environment": body.get("environment") or next(d["environment"] for d in DEPLOYMENTS if d["id"] == did),
                    "target_url": body.get("target_url", ""),
                    "log_url": body.get("log_url", ""),
                    "environment_url": body.get("environment_url", ""),
                    "deployment_url": f"{base}/deployments/{did}",
                    "repository_url": base,
                    "creator": USER,
                    "created_at": _now(),
                    "updated_at": _now(),
                }
                STATUSES[did].append(s)
                return 201, s
        m3 = re.fullmatch(r"/issues/(\d+)/comments", rest)
        if m3:
            n = int(m3.group(1))
            if method == "GET":
                return 200, COMMENTS.get(n, [])
            if method == "POST":
                cid = _id()
                c = {"id": cid, "node_id": f"IC_{cid}", "url": f"{base}/issues/comments/{cid}", "html_url": f"https://github.com/{owner}/{repo}/pull/{n}#issuecomment-{cid}",
                     "body": (body or {}).get("body", ""), "user": USER, "created_at": _now(), "updated_at": _now(), "issue_url": f"{base}/issues/{n}"}
                COMMENTS.setdefault(n, []).append(c)
                return 201, c
        m4 = re.fullmatch(r"/issues/comments/(\d+)", rest)
        if m4 and method == "PATCH":
            cid = int(m4.group(1))
            for comments in COMMENTS.values():
                for c in comments:
                    if c["id"] == cid:
                        c["body"] = (body or {}).get("body", c["body"])
                        c["updated_at"] = _now()
                        return 200, c
            return 404, {"message": "Not Found"}
    return None


def _public(d: dict) -> dict:
    return {k: v for k, v in d.items() if not k.startswith("_")}
