"""moto in server mode, with fastdeploy's sandbox extensions loaded.

Stock moto stores ECS services and CodeBuild builds but never moves them
through their states. The `ext_*.py` modules beside this file extend moto's
backends, faithfully to the AWS API documentation, so deployments roll out,
fail and roll back, and builds run and finish, as they do on AWS.

Usage: python3 moto_server.py PORT
Prints "ready <port>" on stdout once it serves requests.
"""

import importlib
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from moto.server import ThreadedMotoServer  # noqa: E402


def load_extensions() -> list[str]:
    """Imports every ext_*.py in name order, ext_faults last: each extension
    wraps moto's dispatcher, so the last one loaded sees every request first,
    and fault injection must see them all, whichever extension serves them."""
    loaded = []
    paths = sorted(pathlib.Path(__file__).parent.glob("ext_*.py"), key=lambda p: (p.stem == "ext_faults", p.stem))
    for path in paths:
        importlib.import_module(path.stem)
        loaded.append(path.stem)
    return loaded


def main() -> None:
    port = int(sys.argv[1])
    exts = load_extensions()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"ready {port} extensions={','.join(exts)}", flush=True)
    try:
        # Exit when the parent (the test process) closes our stdin.
        sys.stdin.read()
    finally:
        server.stop()
        os._exit(0)


if __name__ == "__main__":
    main()
