"""Load through the real server: reader sessions over Streamlit's own websocket, at three paces.

A real `streamlit run` serves a database with the small demo cohort and one real CV run. Each
reader session is a websocket client speaking Streamlit's protocol (protobuf ``BackMsg`` /
``ForwardMsg``), signed in by a session token in the query string as a reloaded browser tab is.
It reads as the reading page does (``dashboard.reader_component``): the browser answers by itself,
so the server sees one *sync* per read, carrying the answer (with its attempt id), the position
now on screen and the cases held; the reply acknowledges the answer and carries the next case to
hold. Latency is sync sent -> the server's ``script_finished`` of that fragment run (the reply
with the acknowledgement has arrived): what the reader's answer waits for, off their path.

Paces: back to back with 20 readers; with think time (exponential, mean 5 s) at 20 and at 100
readers; between them an aided read with its Grad-CAM and an admin opening the Run page. Server
CPU per read comes from /proc for the server process. Figures are printed and written to
``test-artifacts/bench_server.json``; nothing is asserted.

    .venv/bin/python -m tests.load.bench_server [--reads 8] [--think 5]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect as ws_connect

import db
from core.bench.machine import machine_line
from core.data.labels import CLASSES
from core.reader_study.pixel_transport import unpack
from db.clock import now_iso
from tests.e2e.server import ROOT, StreamlitServer

ARTIFACTS = ROOT / "test-artifacts"
SECRET = "bench-admin-secret"


class Session:
    """One browser tab's worth of Streamlit protocol over a websocket, and the reading desk's
    browser side: the worklist, the position on screen, the cases held."""

    def __init__(self, url: str, query: str):
        self.ws = ws_connect(
            url.replace("http", "ws") + "/_stcore/stream",
            subprotocols=["streamlit"],
            max_size=None,
            legacy=True,  # a plain object, closed by close()
            open_timeout=60,
        )
        self.query = query
        self.headings: list[str] = []
        self.pages: dict[str, str] = {}  # url path -> page script hash
        self.page_hash = ""
        self.desk: tuple[str, str] | None = None  # (component id, fragment id)
        self.header: dict = {}
        self.cases: dict[int, dict] = {}
        self.work: list = []
        self.pos: int | None = None
        self.bytes_received: list[int] = []

    def rerun(self, sync: dict | None = None, *, page: str | None = None) -> float:
        """Send one rerun (optionally the desk's sync); return seconds to script_finished."""
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query
        state.page_script_hash = self.pages.get(page, self.page_hash) if page else self.page_hash
        if sync is not None:
            component_id, fragment_id = self.desk
            state.widget_states.widgets.add(
                id=f"$$STREAMLIT_INTERNAL_KEY_{component_id}__events",
                json_trigger_value=json.dumps([{"event": "sync", "value": sync}]),
            )
            if fragment_id:
                state.fragment_id = fragment_id
        self.headings = []
        start = time.perf_counter()
        self.ws.send(msg.SerializeToString())
        self._until_finished()
        return time.perf_counter() - start

    def _until_finished(self) -> None:
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(self.ws.recv(timeout=120))
            kind = fwd.WhichOneof("type")
            if kind == "script_finished":
                return
            if kind == "new_session":
                self.page_hash = fwd.new_session.page_script_hash or self.page_hash
            elif kind == "navigation":
                self.pages = {p.url_pathname: p.page_script_hash for p in fwd.navigation.app_pages}
                self.page_hash = fwd.navigation.page_script_hash or self.page_hash
            elif kind == "delta":
                self._element(fwd.delta)

    def _element(self, delta) -> None:
        if delta.WhichOneof("type") != "new_element":
            return
        element = delta.new_element
        if element.WhichOneof("type") == "heading":
            self.headings.append(element.heading.body)
        elif element.WhichOneof("type") == "bidi_component":
            component = element.bidi_component
            if not component.component_name.endswith("reader"):
                return
            self.desk = (component.id, delta.fragment_id)
            self.bytes_received.append(len(component.bytes))
            self.header, _ = unpack(component.bytes)
            self.work = self.header.get("work") or self.work
            for entry in self.header.get("cases", []):
                self.cases[entry["position"]] = entry
            if self.pos is None:
                self.pos = self.header.get("start")

    def next_unread(self) -> int | None:
        unread = [w[0] for w in self.work if not w[2]]
        after = [p for p in unread if p > self.pos] + [p for p in unread if p < self.pos]
        return after[0] if after else None

    def answer(self, label: str) -> float:
        """Enter on the case on screen: move on, and sync the answer; return the sync's seconds.

        Raises AssertionError when the reply does not acknowledge it."""
        row = next(w for w in self.work if w[0] == self.pos)
        attempt = str(uuid.uuid4())
        pending = {"attempt": attempt, "arm": self.header["arm"], "position": self.pos,
                   "display_id": row[1], "label": label, "certainty": "probable",
                   "duration_ms": 1000, "age_ms": 0}  # fmt: skip
        row[2] = True
        self.pos = self.next_unread() or self.pos
        seconds = self.rerun({"at": self.pos, "pending": [pending], "have": sorted(self.cases)})
        assert attempt in self.header.get("acks", []), self.header.get("refused")
        return seconds

    def close(self) -> None:
        self.ws.close()


def build(workdir: Path, n_readers: int) -> dict:
    """Database, one real CV run (final model saved under workdir/runs), a study per phase."""
    from core.data.demo_data import generate_demo_cohort
    from tests.e2e.conftest import build_database

    generate_demo_cohort(workdir / "cohort", seed=0, counts=(24, 10, 6))
    path = workdir / "bench.db"
    run_id = build_database(workdir / "cohort", path, workdir / "runs")
    conn = db.connect(path)
    try:
        cases = db.cases_frame(conn)["case_id"].tolist()
        study = db.create_study(conn, name="Load", case_ids=cases)
        tokens = []
        for i in range(n_readers):
            reader_id, _ = db.add_reader(conn, study, f"Reader {i:02d}")
            tokens.append(db.create_session(conn, "reader", reader_id=reader_id, study_id=study))
        aided = db.create_study(
            conn, name="Aided", case_ids=cases[:3], arms=("unaided", "aided"), model_run_id=run_id
        )
        aided_reader, _ = db.add_reader(conn, aided, "Aided reader")
        for case_id in cases[:3]:
            db.submit_read(
                conn, study_id=aided, reader_id=aided_reader, case_id=case_id, arm="unaided",
                label="SCC", confidences={"SCC": 0.7, "AC": 0.15, "ASC": 0.15},
                shown_at=now_iso(),
            )  # fmt: skip
        aided_token = db.create_session(conn, "reader", reader_id=aided_reader, study_id=aided)
        admin_token = db.create_session(conn, "admin")
    finally:
        conn.close()
    return {"path": path, "tokens": tokens, "aided": aided_token, "admin": admin_token}


def read(session: Session, n_reads: int, latencies: list, errors: list, *, ready=None, think_s=0.0):
    """``n_reads`` answers as the reading page sends them (after the page's first load and, when
    given, once every session is loaded: ``ready``, a barrier), ``think_s`` apart on average."""
    try:
        session.rerun()
        if ready is not None:
            ready.wait()
        rng = np.random.default_rng(abs(hash(session.query)) % 2**32)
        for i in range(n_reads):
            if think_s:
                time.sleep(rng.exponential(think_s))
            latencies.append(session.answer(CLASSES[i % 3]))
    except Exception as exc:  # noqa: BLE001 - a benchmark reports failures, it does not stop
        errors.append(repr(exc))


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its threads so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phase(url: str, tokens: list[str], n_reads: int, pid: int, think_s: float = 0.0) -> dict:
    sessions = [Session(url, f"session={t}") for t in tokens]
    latencies: list[float] = []
    errors: list[str] = []
    ready = threading.Barrier(len(sessions) + 1)
    threads = [
        threading.Thread(
            target=read,
            args=(s, n_reads, latencies, errors),
            kwargs={"ready": ready, "think_s": think_s},
        )  # fmt: skip
        for s in sessions
    ]
    for t in threads:
        t.start()
    ready.wait()  # every reader signed in and shown a case: count from here
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    replies = [b for s in sessions for b in s.bytes_received[1:]]  # after each first page
    for s in sessions:
        s.close()
    lat = np.array(latencies) * 1000
    n = len(latencies)
    return {
        "readers": len(tokens),
        "think_time_mean_s": think_s,
        "reads": n,
        "errors": errors[:5],
        "reads_per_s": round(n / wall, 2),
        "sync_to_ack_ms_p50": round(float(np.percentile(lat, 50)), 1) if n else None,
        "sync_to_ack_ms_p95": round(float(np.percentile(lat, 95)), 1) if n else None,
        "server_cpu_ms_per_read": round(1000 * cpu / max(n, 1), 1),  # the one sync of a read
        "server_cpu_busy": round(cpu / wall, 2),  # cores
        "reply_kb_mean": round(float(np.mean(replies)) / 1024, 1) if replies else None,
    }


def aided_read_and_run_page(url: str, aided_token: str, admin_token: str) -> dict:
    reader = Session(url, f"session={aided_token}")
    reader.rerun()
    case = reader.cases.get(reader.pos, {})
    gradcam = [p["title"] for p in case.get("side", []) if "Grad-CAM" in p["title"]]
    errors: list[str] = []
    read(reader, 1, [], errors)
    reader.close()
    admin = Session(url, f"session={admin_token}")
    admin.rerun()
    run_page = admin.rerun(page="run_cv")
    admin.close()
    return {
        "aided_read_errors": errors,
        "aided_shown_model": case.get("model") is not None,
        "aided_gradcam_shown": bool(gradcam),
        "run_page": admin.headings[:1],
        "run_page_seconds": round(run_page, 2),
    }


def children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (e.g. the Grad-CAM worker the aided read started)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text if _alive(int(c))]
    return found


def _alive(pid: int) -> bool:
    try:  # a finished worker nobody has reaped yet is a zombie ("Z"): not running
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def torch_loaded(pid: int) -> bool:
    """Whether the server process has torch's native library mapped (i.e. imported torch)."""
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def wait_for_workers(pid: int, timeout_s: float = 180) -> float:
    """Let the background Grad-CAM worker finish, so "after" measures the server alone."""
    start = time.perf_counter()
    while children(pid) and time.perf_counter() - start < timeout_s:
        time.sleep(0.2)
    return round(time.perf_counter() - start, 1)


PACES = (("back_to_back_20", 20, 0.0), ("think_20", 20, 1.0), ("think_100", 100, 1.0))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=8, help="reads per reader and pace")
    parser.add_argument("--think", type=float, default=5.0, help="mean think time, seconds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ["CERVIXSCOPE_HOME"] = str(workdir)  # runs/ and caches under it
        built = build(workdir, sum(n for _, n, _ in PACES))
        server = StreamlitServer(built["path"], SECRET, workdir / "server.log", cwd=workdir)
        server.start()
        try:
            pid, tokens, result = server.process.pid, list(built["tokens"]), {}
            for name, n_readers, think in PACES:
                mine, tokens = tokens[:n_readers], tokens[n_readers:]
                result[name] = phase(server.url, mine, args.reads, pid, think * args.think)
                if name == PACES[0][0]:
                    result["between"] = aided_read_and_run_page(
                        server.url, built["aided"], built["admin"]
                    )
                    result["between"]["waited_for_gradcam_worker_s"] = wait_for_workers(pid)
                    result["between"]["torch_in_server"] = torch_loaded(pid)
        finally:
            server.stop()
        conn = db.connect(built["path"])
        try:
            result["reads_stored"] = len(db.reads_frame(conn, 1))
        finally:
            conn.close()
    result["machine"] = machine_line()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bench_server.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
