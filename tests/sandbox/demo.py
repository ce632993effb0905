"""Runs fastdeploy's main job end to end against the local sandbox.

Starts moto (with the sandbox extensions), a real OCI registry with
htpasswd auth, and two recording receivers (Slack, the GitHub API); builds a
tiny busybox base image with buildah (nothing can be pulled here); seeds an
ECS cluster and service and a Lambda function in moto; then runs
`fastdeploy run` on the example app in examples/shop exactly as the Actions
runner would, for a push to main (production): its fastdeploy.yml deploys
`web` to the ECS service and `thumbs` to the Lambda function in one run. It
prints the job summary, the outputs and what Slack and GitHub were sent.

Workflow commands a terminal reader does not need are shown as a reader
would see them on GitHub: `::group::` as a heading, `::add-mask::` and
`::endgroup::` not at all, annotations as `notice:`/`warning:`/`error:`.
The job summary and the outputs are kept in target/demo/ (the sandbox's
files too with --keep).

Usage: python3 tests/sandbox/demo.py PATH_TO_FASTDEPLOY_BINARY [--keep]
Exit status: fastdeploy's.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "tests" / "sandbox"
ACCOUNT = "123456789012"
REGION = "us-east-1"
ECR_USER, ECR_PASSWORD = "AWS", f"{ACCOUNT}-auth-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ready(cmd: list[str], name: str) -> subprocess.Popen:
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = p.stdout.readline()
        if line.startswith("ready"):
            return p
        if not line and p.poll() is not None:
            break
    raise SystemExit(f"demo: {name} did not start")


def wait_port(port: int, name: str) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"demo: {name} did not listen on {port}")


def post(url: str, body) -> object:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def run(cmd: list[str], **kw) -> str:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    return out.stdout.strip()


class Sandbox:
    """The sandbox's parts, started on free loopback ports."""

    def __init__(self, work: pathlib.Path):
        self.work = work
        self.procs: list[subprocess.Popen] = []
        self.moto_port = free_port()
        self.procs.append(start_ready([sys.executable, str(SANDBOX / "moto_server.py"), str(self.moto_port)], "moto"))
        self.moto = f"http://127.0.0.1:{self.moto_port}"
        self.slack = self._receiver("slack receiver")
        self.github = self._receiver("github receiver", "--github")
        self.registry_host = self._registry()
        # Buildah keeps its images under the work dir: nothing leaks onto the host.
        storage = work / "containers"
        self.buildah_flags = ["--root", str(storage / "root"), "--runroot", str(storage / "run"), "--storage-driver", "vfs"]

    def _receiver(self, name: str, *flags: str) -> str:
        port = free_port()
        self.procs.append(start_ready([sys.executable, str(SANDBOX / "receiver.py"), str(port), *flags], name))
        return f"http://127.0.0.1:{port}"

    def _registry(self) -> str:
        port = free_port()
        d = self.work / "registry"
        d.mkdir()
        (d / "htpasswd").write_text(run(["htpasswd", "-Bbn", ECR_USER, ECR_PASSWORD]) + "\n")
        (d / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {d / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: sandbox\n    path: {d / 'htpasswd'}\n"
        )
        binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        self.procs.append(subprocess.Popen([binary, "serve", str(d / "config.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(port, "docker-registry")
        return f"127.0.0.1:{port}"

    def buildah(self, *args: str) -> str:
        return run(["buildah", *self.buildah_flags, *args])

    def push_base_image(self) -> str:
        """busybox on scratch: the demo's base, built offline."""
        busybox = next(p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p))
        ctr = self.buildah("from", "scratch")
        self.buildah("copy", ctr, busybox, "/bin/busybox")
        self.buildah("run", "--isolation", "chroot", ctr, "/bin/busybox", "--install", "-s", "/bin")
        ref = f"{self.registry_host}/base:1"
        self.buildah("commit", ctr, ref)
        authfile = self.work / "auth.json"
        subprocess.run(
            ["buildah", *self.buildah_flags, "login", "--authfile", str(authfile), "--tls-verify=false", "-u", ECR_USER, "--password-stdin", self.registry_host],
            input=ECR_PASSWORD, text=True, check=True, capture_output=True,
        )
        digestfile = self.work / "base.digest"
        self.buildah("push", "--authfile", str(authfile), "--tls-verify=false", "--digestfile", str(digestfile), ref)
        self.base_digest = digestfile.read_text().strip()
        return ref

    def seed_lambda(self) -> None:
        """The `thumbs` component's function, first deployed by hand from the base image."""
        import boto3

        creds = {"endpoint_url": self.moto, "region_name": REGION, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        post(f"{self.moto}/_sandbox/lambda/config", {"step_seconds": 0.3, "steps": 3, "create_steps": 1})
        role = boto3.client("iam", **creds).create_role(
            RoleName="shop-thumbs",
            AssumeRolePolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
            ),
        )
        boto3.client("lambda", **creds).create_function(
            FunctionName="shop-thumbs",
            PackageType="Image",
            Code={"ImageUri": f"{self.registry_host}/base@{self.base_digest}"},
            Role=role["Role"]["Arn"],
            Architectures=["x86_64"],
        )

    def seed_ecs(self) -> None:
        import boto3

        ecs = boto3.client("ecs", endpoint_url=self.moto, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        post(f"{self.moto}/_sandbox/ecs/config", {"step_seconds": 0.3})
        ecs.create_cluster(clusterName="demo")
        td = ecs.register_task_definition(
            family="shop-web",
            containerDefinitions=[{"name": "web", "image": "public.ecr.aws/nginx/nginx:1.27", "essential": True, "memory": 128, "portMappings": [{"containerPort": 8080}]}],
            requiresCompatibilities=["EC2"],
            tags=[{"key": "team", "value": "shop"}],
        )
        ecs.create_service(
            cluster="demo",
            serviceName="shop",
            taskDefinition=td["taskDefinition"]["taskDefinitionArn"],
            desiredCount=2,
            deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}, "maximumPercent": 200, "minimumHealthyPercent": 100},
        )

    def stop(self) -> None:
        for p in self.procs:
            try:
                if p.stdin:
                    p.stdin.close()
            except OSError:
                pass
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


def for_terminal(line: str) -> str | None:
    """A line of fastdeploy's Actions log as the reader of GitHub's log view sees it."""
    if not line.startswith("::"):
        return line
    command, _, rest = line[2:].partition("::")
    name = command.split(" ", 1)[0]
    if name == "group":
        return f"\n▸ {rest}"
    if name in ("endgroup", "add-mask", "stop-commands"):
        return None
    if name in ("notice", "warning", "error", "debug"):
        return f"{name}: {rest}".replace("%0A", "\n  ").replace("%0D", "").replace("%25", "%")
    return line


def run_shown(cmd: list[str], env: dict[str, str], cwd: pathlib.Path) -> int:
    """Runs fastdeploy, printing its log as it comes, workflow commands shown for a terminal."""
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, text=True, bufsize=1)
    assert p.stdout is not None
    for line in p.stdout:
        shown = for_terminal(line.rstrip("\n"))
        if shown is not None:
            print(shown, flush=True)
    return p.wait()


def keep_results(summary: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """Copies the job summary and the outputs where the reader can open them after the demo."""
    kept = ROOT / "target" / "demo"
    kept.mkdir(parents=True, exist_ok=True)
    for f in (summary, out):
        if f.exists():
            shutil.copy(f, kept / f.name)
    return kept


def workspace(work: pathlib.Path) -> tuple[pathlib.Path, str]:
    ws = work / "shop"
    shutil.copytree(ROOT / "examples" / "shop", ws)
    git = ["git", "-c", "user.name=Dana Scully", "-c", "user.email=dana@acme.example"]
    run(["git", "init", "-q", "-b", "main"], cwd=ws)
    run(["git", "add", "."], cwd=ws)
    run([*git, "commit", "-qm", "Faster checkout"], cwd=ws)
    return ws, run(["git", "rev-parse", "HEAD"], cwd=ws)


def main() -> int:
    binary = pathlib.Path(sys.argv[1]).resolve()
    keep = "--keep" in sys.argv
    work = pathlib.Path(tempfile.mkdtemp(prefix="fastdeploy-demo-"))
    sb = Sandbox(work)
    try:
        print("sandbox: moto", sb.moto, "| registry", sb.registry_host, "| slack", sb.slack, "| github", sb.github, flush=True)
        print("building a busybox base image with buildah (the sandbox pulls nothing)...", flush=True)
        base = sb.push_base_image()
        print("seeding ECS (cluster demo, service shop) and Lambda (function shop-thumbs) in moto...", flush=True)
        sb.seed_ecs()
        sb.seed_lambda()
        ws, sha = workspace(work)
        event = json.loads((ROOT / "tests/fixtures/events/push-main.json").read_text())
        event["after"] = sha
        event["head_commit"]["id"] = sha
        event["head_commit"]["message"] = "Faster checkout"
        (work / "event.json").write_text(json.dumps(event))
        out, summary = work / "output", work / "summary.md"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_EVENT_PATH": str(work / "event.json"),
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_SHA": sha,
            "GITHUB_REPOSITORY": "acme/shop",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_API_URL": sb.github,
            "GITHUB_RUN_ID": "1001",
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_WORKSPACE": str(ws),
            "GITHUB_OUTPUT": str(out),
            "GITHUB_STEP_SUMMARY": str(summary),
            "AWS_ENDPOINT_URL": sb.moto,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "FASTDEPLOY_SLACK_API_URL": sb.slack,
            "FASTDEPLOY_REGISTRY_INSECURE": "true",
            "FASTDEPLOY_BUILDAH_FLAGS": " ".join(sb.buildah_flags),
            "FASTDEPLOY_BUILDAH_ISOLATION": "chroot",
            "NO_COLOR": "1",
            "INPUT_BUILDER": "buildah",
            "INPUT_REGISTRY": sb.registry_host,
            "INPUT_BUILD_ARGS": f"BASE={base}",
            "INPUT_POLL_SECONDS": "0.5",
            "INPUT_WAIT_MINUTES": "5",
            "INPUT_SLACK_WEBHOOK_URL": f"{sb.slack}/services/T000/B000/XXXXDEMO",
            "INPUT_GITHUB_TOKEN": "ghs_demoTokenNotReal0000000000",
            "INPUT_ENVIRONMENT_URL": "https://shop.example.com",
        }
        print(f"\n$ fastdeploy run   (push to main of acme/shop at {sha[:7]}; examples/shop/fastdeploy.yml)", flush=True)
        print("  the first build of each component starts cold: buildah's vfs storage makes it take a minute or two", flush=True)
        print(
            "  the sandbox runs ECS and Lambda on a fast clock (a rollout step is 0.3 s), so the doctor's estimates,\n"
            "  made with AWS's real timings, are longer than the deploy times the run measures here\n",
            flush=True,
        )
        code = run_shown([str(binary), "run"], env, ws)
        kept = keep_results(summary, out)
        print("\n==================== job summary ($GITHUB_STEP_SUMMARY) ====================")
        print(summary.read_text() if summary.exists() else "(none written)")
        print("==================== outputs ($GITHUB_OUTPUT) ====================")
        print(out.read_text() if out.exists() else "(none written)")
        slack = get(f"{sb.slack}/__requests")
        github = get(f"{sb.github}/__requests")
        print("==================== what Slack and GitHub were sent ====================")
        for r in slack:
            print(f"slack:  {r['method']} {r['path']}")
        for r in github:
            print(f"github: {r['method']} {r['path']}")
        print(f"\nfastdeploy exited {code}")
        print(f"the job summary and the outputs are kept in {kept.relative_to(ROOT)}/ ({summary.name}, {out.name})")
        print(
            "\nnext: in your own repository, `fastdeploy init` writes fastdeploy.yml and a workflow for what it finds\n"
            "      (install: cargo install --locked --git https://github.com/fastdeploy/fastdeploy fastdeploy)"
        )
        return code
    finally:
        sb.stop()
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
