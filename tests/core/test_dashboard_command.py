"""`cervixscope dashboard`: stops with its server, never prints a configured secret again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.cli import main
from core.project.admin_secret import ensure_admin_secret

ROOT = Path(__file__).resolve().parents[2]
STRONG = "a-strong-admin-secret-48f1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.read() == b"ok"
    except OSError:
        return False


def _servers_on(port: int) -> list[int]:
    """PIDs of live processes whose command line serves ``port``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().split()[2]
        except OSError:
            continue
        if b"streamlit" in b" ".join(cmd) and str(port).encode() in cmd and state != "Z":
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_sigterm_to_the_dashboard_command_stops_streamlit_too(tmp_path):
    port = _free_port()
    env = dict(os.environ, CERVIXSCOPE_ADMIN_SECRET=STRONG, CERVIXSCOPE_DB=str(tmp_path / "d.db"))
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "dashboard", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not _healthy(port):
            assert wrapper.poll() is None, wrapper.stdout.read()
            assert time.monotonic() < deadline, "the dashboard never answered"
            time.sleep(0.5)
        assert _servers_on(port)
        wrapper.send_signal(signal.SIGTERM)
        assert wrapper.wait(timeout=30) is not None
        deadline = time.monotonic() + 15
        while _servers_on(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _servers_on(port) == []
        assert not _healthy(port)
        output = wrapper.stdout.read()
        assert STRONG not in output and "from $CERVIXSCOPE_ADMIN_SECRET" in output
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
        for pid in _servers_on(port):
            os.kill(pid, signal.SIGKILL)


def test_a_new_secret_file_is_owner_only_and_the_secret_printed_once(tmp_path, monkeypatch):
    monkeypatch.delenv("CERVIXSCOPE_ADMIN_SECRET", raising=False)
    path = tmp_path / ".streamlit" / "secrets.toml"
    old_umask = os.umask(0)
    try:
        secret, created = ensure_admin_secret(path)
    finally:
        os.umask(old_umask)
    assert created and len(secret) >= 16
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_admin_secret(path) == (secret, False)


@pytest.mark.parametrize("weak", ["pw1234", "aaaaaaaaaaaaaaaa", "short-pw"])
def test_a_weak_configured_secret_is_refused_in_one_line(weak, monkeypatch, capsys):
    monkeypatch.setenv("CERVIXSCOPE_ADMIN_SECRET", weak)
    assert main(["dashboard", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cervixscope dashboard: error: the admin secret")
    assert "at least 12 characters" in err and weak not in err and len(err.splitlines()) == 1
