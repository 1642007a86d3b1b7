"""A flood of wrong sign-ins through the real `streamlit run` does not lock out the study.

An attacker's script opens Streamlit's websocket 1,030 times from one address (127.0.0.3), each
time with a made-up ``X-Forwarded-For``: 1,000 wrong access codes that all name the genuine
reader's ID, and 30 wrong admin secrets. No proxy is trusted, so every attempt counts against the
attacker's own address. Meanwhile five readers keep reading, and a genuine reader (127.0.0.2) and
the admin (127.0.0.4) sign in during the flood and just after it, each at once.

The readers' submit latencies before and during the flood are written to
``test-artifacts/sign_in_flood.json`` and printed; they are reported, never asserted.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect as ws_connect

import db
from tests.e2e.conftest import ADMIN_SECRET
from tests.load.bench_server import ARTIFACTS, Session, read

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ATTACKER, READER, ADMIN = "127.0.0.3", "127.0.0.2", "127.0.0.4"
N_CODES, N_SECRETS, N_THREADS, N_READERS = 1000, 30, 8, 5
QUIET_READS, FLOOD_READS = 8, 30  # of the cohort's 40 cases


class SignIn:
    """One fresh websocket session that sends one sign-in form, as a script would."""

    def __init__(self, url: str, source: str, forwarded: str | None = None):
        headers = {"X-Forwarded-For": forwarded} if forwarded else None
        self.ws = ws_connect(
            url.replace("http", "ws") + "/_stcore/stream", subprotocols=["streamlit"],
            max_size=None, open_timeout=60, additional_headers=headers, legacy=True,
            source_address=(source, 0),
        )  # fmt: skip
        self.widgets: dict[str, str] = {}  # label -> widget id
        self.errors: list[str] = []  # st.error bodies of the last run
        self.query = ""
        self.page_hash = ""

    def run(self, states: dict[str, str | bool] | None = None) -> None:
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = self.page_hash
        for label, value in (states or {}).items():
            widget = msg.rerun_script.widget_states.widgets.add(id=self.widgets[label])
            if value is True:
                widget.trigger_value = True
            else:
                widget.string_value = value
        self.errors = []
        self.ws.send(msg.SerializeToString())
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(self.ws.recv(timeout=120))
            kind = fwd.WhichOneof("type")
            if kind == "script_finished":
                return
            if kind == "new_session":
                self.page_hash = fwd.new_session.page_script_hash or self.page_hash
            elif kind == "page_info_changed":
                self.query = fwd.page_info_changed.query_string
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                element = fwd.delta.new_element
                which = element.WhichOneof("type")
                if which in ("text_input", "button"):
                    self.widgets[getattr(element, which).label] = getattr(element, which).id
                elif which == "alert" and element.alert.format == Alert.ERROR:
                    self.errors.append(element.alert.body)

    def close(self) -> None:
        self.ws.close()


_FORM: dict = {}  # widget ids and page hash of the sign-in page: the same in every session


def sign_in(url: str, source: str, field: str, submit: str, value: str, forwarded=None):
    """Send the sign-in form from a new session; return ``(signed in, errors shown)``.

    The first call opens the page as a browser does; later sessions send the form in their first
    message, as a script that knows the page would (half the server's work per guess).
    """
    page = SignIn(url, source, forwarded)
    try:
        if not _FORM:
            page.run()
            _FORM.update(widgets=dict(page.widgets), page_hash=page.page_hash)
        page.widgets, page.page_hash = dict(_FORM["widgets"]), _FORM["page_hash"]
        page.run({field: value, submit: True})
        return "session=" in page.query, page.errors
    finally:
        page.close()


def reader_sign_in(url: str, code: str, source: str = READER, forwarded=None):
    return sign_in(url, source, "Access code", "Continue", code, forwarded)


def admin_sign_in(url: str, secret: str, source: str = ADMIN, forwarded=None):
    return sign_in(url, source, "Admin secret", "Sign in", secret, forwarded)


def build_study(path) -> tuple[int, str, list[str]]:
    """A study over the cohort: the genuine reader's (id, code) and five reading sessions."""
    conn = db.connect(path)
    try:
        cases = db.cases_frame(conn)["case_id"].tolist()
        study = db.create_study(conn, name="Flood", case_ids=cases)
        reader_id, code = db.add_reader(conn, study, "Dr Genuine")
        tokens = []
        for i in range(N_READERS):
            other, _ = db.add_reader(conn, study, f"Reader {i}")
            tokens.append(db.create_session(conn, "reader", reader_id=other, study_id=study))
    finally:
        conn.close()
    return reader_id, code, tokens


def attack(url: str, worker: int, reader_id: int, outcomes: list) -> None:
    """This worker's share of the wrong codes and secrets, each from a new forged address."""
    for i in range(worker, N_CODES + N_SECRETS, N_THREADS):
        forged = f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
        if i < N_CODES:
            outcomes.append(
                reader_sign_in(url, f"R{reader_id}-AAAA-BBBB-{i:04d}", ATTACKER, forged)
            )
        else:
            outcomes.append(admin_sign_in(url, f"wrong-secret-{i}", ATTACKER, forged))


def test_a_flood_of_forged_addresses_locks_out_neither_the_reader_nor_the_admin(server, db_copy):
    reader_id, code, tokens = build_study(db_copy)
    _FORM.clear()
    quiet = _read_all(server.url, tokens, QUIET_READS)  # the same readers before the flood
    outcomes: list = []
    attackers = [
        threading.Thread(target=attack, args=(server.url, w, reader_id, outcomes), daemon=True)
        for w in range(N_THREADS)
    ]
    latencies: list[float] = []
    errors: list[str] = []
    readers = [
        threading.Thread(
            target=read,
            args=(Session(server.url, f"session={t}"), 30, latencies, errors),
            daemon=True,
        )  # fmt: skip
        for t in tokens
    ]
    start = time.perf_counter()
    for thread in attackers + readers:
        thread.start()
    while len(outcomes) < (N_CODES + N_SECRETS) // 2:  # the flood is half-way
        time.sleep(0.05)
    during = reader_sign_in(server.url, code), admin_sign_in(server.url, ADMIN_SECRET)
    for thread in attackers:
        thread.join(timeout=600)
    flood_s = time.perf_counter() - start
    after = reader_sign_in(server.url, code), admin_sign_in(server.url, ADMIN_SECRET)
    for thread in readers:
        thread.join(timeout=600)

    assert during == ((True, []), (True, [])), during
    assert after == ((True, []), (True, [])), after
    assert len(outcomes) == N_CODES + N_SECRETS and not any(ok for ok, _ in outcomes)
    assert all(len(shown) == 1 for _, shown in outcomes)  # every guess refused, in words
    assert not errors and latencies, errors
    _check_audit(db_copy)
    _report(quiet, latencies, outcomes, flood_s)


def _read_all(url: str, tokens: list[str], n_reads: int) -> list[float]:
    latencies: list[float] = []
    errors: list[str] = []
    sessions = [Session(url, f"session={t}") for t in tokens]
    threads = [
        threading.Thread(target=read, args=(s, n_reads, latencies, errors), daemon=True)
        for s in sessions
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    for session in sessions:
        session.close()
    assert not errors and latencies, errors
    return latencies


def _check_audit(path) -> None:
    conn = db.connect(path)
    try:
        audit = db.security_audit_frame(conn, limit=10_000)
    finally:
        conn.close()
    failed = audit[audit["event"] == "sign_in_failed"]
    assert set(failed["client"]) == {ATTACKER}  # the forged header did not change the client
    assert set(failed["address"]) == {ATTACKER}
    assert failed["forwarded"].str.startswith("10.").all()  # kept, apart, for the record
    assert len(failed) < 40  # the back-off refused the rest before any hash
    ok = audit[audit["event"] == "sign_in"]
    assert set(ok["client"]) == {READER, ADMIN} and len(ok) == 4


def _percentiles(latencies: list[float]) -> dict:
    ms = np.array(latencies) * 1000
    return {q: round(float(np.percentile(ms, int(q[1:]))), 1) for q in ("p50", "p95")}


def _report(quiet: list[float], latencies: list[float], outcomes: list, flood_s: float) -> None:
    from core.bench.machine import machine_line

    figures = {
        "machine": machine_line(),
        "wrong_sign_ins": len(outcomes),
        "flood_s": round(flood_s, 1),
        "wrong_sign_ins_per_min": round(len(outcomes) / flood_s * 60),
        "readers": N_READERS,
        "submit_ms_before_flood": _percentiles(quiet),
        "submit_ms_during_flood": _percentiles(latencies),
        "reader_submits_during_flood": len(latencies),
        "refusals": sorted({shown[0].split(";")[0] for _, shown in outcomes}),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "sign_in_flood.json").write_text(json.dumps(figures, indent=2))
    print("\nsign-in flood:", json.dumps(figures))
