"""Saved results: kept per scope under their key, one row per kind (the newest), the oldest
dropped beyond the limit, and a busy file skips the save instead of holding the page."""

from __future__ import annotations

import sqlite3

import db
import db.saved_results as saved_results


def _keys(conn, scope: str) -> list[str]:
    rows = conn.conn.execute("SELECT key FROM saved_results WHERE scope = ? ORDER BY key", (scope,))
    return [r[0] for r in rows]


def test_save_read_replace_and_forget(tmp_path):
    conn = db.connect(tmp_path / "c.db")
    try:
        assert db.saved_result(conn, "study:1", "rater A|k1") is None
        assert db.save_result(conn, "study:1", "rater A", "rater A|k1", b"one")
        assert db.save_result(conn, "study:1", "rater A", "rater A|k1", b"two")
        assert db.save_result(conn, "study:2", "rater A", "rater A|k1", b"other study")
        assert db.saved_result(conn, "study:1", "rater A|k1") == b"two"
        assert db.forget_results(conn, "study:1") == 1
        assert db.saved_result(conn, "study:1", "rater A|k1") is None
        assert db.saved_result(conn, "study:2", "rater A|k1") == b"other study"
        assert (
            db.forget_results(conn) == 1 and db.saved_result(conn, "study:2", "rater A|k1") is None
        )
    finally:
        conn.close()


def test_a_newer_row_of_a_kind_replaces_the_older_ones_and_leaves_other_kinds(tmp_path):
    conn = db.connect(tmp_path / "c.db")
    try:
        db.save_result(conn, "study:1", "rater A", "rater A|v1", b"a1")
        db.save_result(conn, "study:1", "rater B", "rater B|v1", b"b1")
        db.save_result(conn, "study:1", "rater A", "rater A|v2", b"a2")  # A read again
        assert _keys(conn, "study:1") == ["rater A|v2", "rater B|v1"]
        assert db.saved_result(conn, "study:1", "rater B|v1") == b"b1"
    finally:
        conn.close()


def test_a_scope_keeps_only_its_newest_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(saved_results, "KEEP_PER_SCOPE", 3)
    conn = db.connect(tmp_path / "c.db")
    try:
        for i in range(5):
            db.save_result(conn, "study:1", f"kind {i}", f"k{i}", b"x")
        db.save_result(conn, "study:2", "kind 0", "k0", b"x")
        assert _keys(conn, "study:1") == ["k2", "k3", "k4"]
        assert db.saved_result(conn, "study:2", "k0") == b"x"
    finally:
        conn.close()


def test_a_busy_database_skips_the_save_and_keeps_its_timeout(tmp_path):
    path = tmp_path / "c.db"
    conn = db.connect(path)
    other = sqlite3.connect(path)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        assert db.save_result(conn, "study:1", "k", "k", b"x") is False
        (timeout,) = conn.conn.execute("PRAGMA busy_timeout").fetchone()
        assert timeout == db.connection.BUSY_TIMEOUT_MS
        other.rollback()
        assert db.save_result(conn, "study:1", "k", "k", b"x") is True
    finally:
        other.close()
        conn.close()


def test_the_newest_result_of_a_kind_is_what_older_inputs_gave(tmp_path):
    conn = db.connect(tmp_path / "saved.db")
    try:
        assert db.newest_result(conn, "study:1", "kappa") is None
        db.save_result(conn, "study:1", "kappa", "kappa|v1", b"one")
        db.save_result(conn, "study:1", "fleiss", "fleiss|v1", b"other kind")
        db.save_result(conn, "study:2", "kappa", "kappa|v9", b"other scope")
        assert db.newest_result(conn, "study:1", "kappa") == ("kappa|v1", b"one")
        db.save_result(conn, "study:1", "kappa", "kappa|v2", b"two")
        assert db.newest_result(conn, "study:1", "kappa") == ("kappa|v2", b"two")
    finally:
        conn.close()
