"""A private docker daemon (dockerd with BuildKit) and the buildx plugin.

Runs Debian 13's dockerd, containerd and docker-buildx that
scripts/install-sandbox unpacks into /opt/fastdeploy-sandbox/docker
(FASTDEPLOY_SANDBOX_DOCKER_DIR overrides), everything on paths under DIR:

  DIR/docker.sock      the API socket (DOCKER_HOST=unix://DIR/docker.sock)
  DIR/config           a DOCKER_CONFIG whose cli-plugins/ links docker-buildx
  DIR/data, DIR/exec   dockerd's data-root and exec-root; dockerd starts its
                       own containerd with root and state below them
  DIR/dockerd.log      dockerd's (and containerd's) log

The image store is containerd's (the `containerd-snapshotter` feature), so
the default builder (docker driver) exports registry cache. Builds' RUN
steps get a bridge of their own, fdsb<pid>, on a free 10.214.N.0/24, and no
iptables rules: nothing else on the host is touched, several daemons can run
side by side, and nothing in a build needs to reach beyond the host.
Loopback registries are insecure by default (plain HTTP).

Usage: python3 dockerd.py DIR [--remove-dir] [--storage-driver NAME] [--classic-store]
--storage-driver (or FASTDEPLOY_SANDBOX_DOCKER_STORAGE) names containerd's
snapshotter: overlayfs (dockerd's default) or native (plain copies; the
default when DIR is on an overlayfs, where overlayfs cannot stack).
--classic-store keeps dockerd's own image store instead (what docker 26
does by default, without the feature): its default builder cannot export
cache, and the storage driver is vfs (or --storage-driver's graph driver).
Needs root. Prints "ready unix://DIR/docker.sock DIR/config" on stdout once
`docker info` answers and buildx is found; stops dockerd and containerd,
unmounts what they left under DIR and deletes the bridge when stdin closes
(also on SIGTERM or SIGINT). --remove-dir then removes DIR too.
"""

import ctypes
import fcntl
import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

PREFIX = pathlib.Path(os.environ.get("FASTDEPLOY_SANDBOX_DOCKER_DIR", "/opt/fastdeploy-sandbox/docker"))
BRIDGE_PREFIX = "fdsb"
LOCK = "/run/fastdeploy-sandbox-dockerd.lock"


def log(msg: str) -> None:
    print(f"dockerd.py: {msg}", file=sys.stderr, flush=True)


def ip(*args: str, check: bool = True) -> str:
    out = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def make_bridge() -> str:
    """Creates fdsb<pid> on a free 10.214.N.0/24, removing bridges whose
    dockerd.py died without cleaning up. Serialised by a lock file so two
    daemons starting at once never pick the same subnet."""
    name = f"{BRIDGE_PREFIX}{os.getpid()}"
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for link in os.listdir("/sys/class/net"):
            owner = link[len(BRIDGE_PREFIX):]
            if link.startswith(BRIDGE_PREFIX) and owner.isdigit() and not pid_alive(int(owner)):
                ip("link", "delete", link, check=False)
        used = ip("-4", "-o", "addr", "show") + ip("-4", "route", "show", "table", "all")
        for n in range(1, 255):
            if f"10.214.{n}." not in used:
                break
        else:
            raise RuntimeError("no free 10.214.N.0/24 for the bridge")
        ip("link", "add", "name", name, "type", "bridge")
        ip("addr", "add", f"10.214.{n}.1/24", "dev", name)
        ip("link", "set", name, "up")
    return name


def ping(sock: str) -> bool:
    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(2)
            self.sock.connect(sock)

    try:
        c = Conn("localhost", timeout=2)
        c.request("GET", "/_ping")
        return c.getresponse().status == 200
    except OSError:
        return False


def die_with_parent() -> None:
    # dockerd gets SIGTERM if this script dies, even by SIGKILL.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def processes_under(d: pathlib.Path) -> list[int]:
    """Processes whose command line names a path under `d` (containerd,
    its shims), started by this daemon."""
    mine, needle = [], str(d).encode() + b"/"
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != os.getpid():
            try:
                if needle in pathlib.Path(f"/proc/{p}/cmdline").read_bytes():
                    mine.append(int(p))
            except OSError:
                pass
    return mine


def unmount_under(d: pathlib.Path) -> None:
    prefix = str(d) + "/"
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                points.append(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def default_storage(d: pathlib.Path) -> str | None:
    """containerd's overlayfs snapshotter cannot stack on an overlayfs (a
    container's root): there the `native` snapshotter (plain copies) serves.
    None keeps dockerd's default, overlayfs."""
    best, fstype = "", ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point, kind = fields[4], fields[fields.index("-") + 1]
            if (str(d) + "/").startswith(point.rstrip("/") + "/") and len(point) >= len(best):
                best, fstype = point, kind
    return "native" if fstype == "overlay" else None


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    d = pathlib.Path(args[0]).resolve()
    remove_dir = "--remove-dir" in args
    storage = args[args.index("--storage-driver") + 1] if "--storage-driver" in args else None
    classic = "--classic-store" in args
    storage = storage or os.environ.get("FASTDEPLOY_SANDBOX_DOCKER_STORAGE") or default_storage(d)
    if classic and storage in (None, "native"):
        storage = "vfs"
    if os.geteuid() != 0:
        sys.exit("dockerd.py: dockerd needs root")
    dockerd_bin = PREFIX / "usr/sbin/dockerd"
    docker = PREFIX / "usr/bin/docker"
    plugin = PREFIX / "usr/libexec/docker/cli-plugins/docker-buildx"
    for b in (dockerd_bin, docker, plugin):
        if not os.access(b, os.X_OK):
            sys.exit(f"dockerd.py: {b} is missing: run scripts/install-sandbox")

    d.mkdir(parents=True, exist_ok=True)
    config = d / "config"
    (config / "cli-plugins").mkdir(parents=True, exist_ok=True)
    link = config / "cli-plugins/docker-buildx"
    if not link.is_symlink():
        link.symlink_to(plugin)
    sock = d / "docker.sock"
    host = f"unix://{sock}"
    env = dict(os.environ)
    env["PATH"] = f"{PREFIX}/usr/bin:{PREFIX}/usr/sbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env.update(DOCKER_HOST=host, DOCKER_CONFIG=str(config))

    dockerd = None
    bridge = None
    logfile = d / "dockerd.log"

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    code = 0
    try:
        bridge = make_bridge()
        daemon = {
            "features": {"containerd-snapshotter": not classic},
            "data-root": str(d / "data"),
            "exec-root": str(d / "exec"),
            "pidfile": str(d / "docker.pid"),
            "hosts": [host],
            "bridge": bridge,
            "iptables": False,
            "ip6tables": False,
        }
        if storage:
            daemon["storage-driver"] = storage
        (d / "daemon.json").write_text(json.dumps(daemon, indent=2))
        started = time.monotonic()
        with open(logfile, "ab") as out:
            dockerd = subprocess.Popen(
                [str(dockerd_bin), "--config-file", str(d / "daemon.json")],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, preexec_fn=die_with_parent,
            )
        deadline = started + 50
        while not ping(str(sock)):
            if dockerd.poll() is not None or time.monotonic() > deadline:
                tail = logfile.read_text(errors="replace").splitlines()[-20:]
                raise RuntimeError("dockerd did not start:\n" + "\n".join(tail))
            time.sleep(0.05)
        for check in (["info", "--format", "{{.ServerVersion}}"], ["buildx", "version"]):
            out = subprocess.run([str(docker), *check], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if out.returncode != 0:
                raise RuntimeError(f"docker {' '.join(check)}: {out.stderr.strip()}")
        log(f"dockerd ready in {time.monotonic() - started:.1f} s on {host} (log: {logfile})")
        print(f"ready {host} {config}", flush=True)
        # Exit when the parent (the test process) closes our stdin.
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    except Exception as e:
        log(str(e))
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if dockerd is not None and dockerd.poll() is None:
            dockerd.terminate()
            try:
                dockerd.wait(20)
            except subprocess.TimeoutExpired:
                dockerd.kill()
                dockerd.wait()
        for pid in processes_under(d):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        unmount_under(d)
        if bridge:
            ip("link", "delete", bridge, check=False)
        if remove_dir:
            shutil.rmtree(d, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
