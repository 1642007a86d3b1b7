"""A real `streamlit run` of the dashboard on a free localhost port, for browser and fault tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StreamlitServer:
    """Start, health-check, kill -9 and restart the dashboard against one database file."""

    def __init__(
        self,
        db_path: Path,
        admin_secret: str,
        log_path: Path,
        port: int | None = None,
        cwd: Path | None = None,
        home: Path | None = None,
    ):
        self.cwd = cwd or ROOT  # the working folder
        self.home = home  # the project home (runs/<run_id>/, caches); None: the caller's
        self.db_path = db_path
        self.admin_secret = admin_secret
        self.log_path = log_path
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> None:
        env = dict(os.environ)
        env.update(
            CERVIXSCOPE_DB=str(self.db_path),
            CERVIXSCOPE_ADMIN_SECRET=self.admin_secret,
            PYTHONPATH=str(ROOT),
        )
        if self.home is not None:
            env["CERVIXSCOPE_HOME"] = str(self.home)
        command = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "dashboard" / "app.py"),
            "--server.headless=true",
            f"--server.port={self.port}",
            "--server.address=127.0.0.1",
            "--server.fileWatcherType=none",
            "--browser.gatherUsageStats=false",
            "--client.showErrorDetails=none",
            "--client.toolbarMode=minimal",
            "--runner.postScriptGC=false",  # as .streamlit/config.toml
        ]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=self.cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited early; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as resp:
                    if resp.read() == b"ok":
                        return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"streamlit not healthy on {self.url} after {timeout} s")

    def kill_hard(self) -> None:
        """kill -9 the whole process group, as a crash or an OOM kill would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill_hard()
