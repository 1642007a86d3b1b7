"""Reader access codes: handed out once, stored only as a salted scrypt hash."""

from __future__ import annotations

import hashlib

import pytest

import db


def test_code_signs_in_its_reader_ignoring_case_and_spaces(conn, study):
    study_id, _, readers = study
    for name, (reader_id, code) in readers.items():
        assert db.authenticate_reader(conn, code) == db.Reader(reader_id, study_id, name)
        assert db.authenticate_reader(conn, f"  {code.lower()} ") == db.Reader(
            reader_id, study_id, name
        )


@pytest.mark.parametrize(
    "mangle",
    [
        lambda code, other: code[:-1] + ("A" if code[-1] != "A" else "B"),  # one symbol off
        # Dr B's reader ID with Dr A's secret part
        lambda code, other: other.split("-", 1)[0] + "-" + code.split("-", 1)[1],
        lambda code, other: "",
        lambda code, other: "R999-AAAA-BBBB-CCCC",
        lambda code, other: "not a code at all",
    ],
    ids=["typo", "prefix-swap", "empty", "unknown-reader", "garbage"],
)
def test_wrong_codes_are_refused(conn, study, mangle):
    _, _, readers = study
    (_, code_a), (_, code_b) = readers["Dr A"], readers["Dr B"]
    with pytest.raises(db.InvalidAccessCode, match="access code is not valid"):
        db.authenticate_reader(conn, mangle(code_a, code_b))


def test_codes_are_not_recoverable_from_the_database_file(db_path, study):
    _, _, readers = study
    files = [db_path, db_path.with_name(db_path.name + "-wal")]
    raw = b"".join(f.read_bytes() for f in files if f.exists())
    assert len(raw) > 10_000  # the file and its WAL hold the study, so the search means something
    for _reader_id, code in readers.values():
        secret = code.split("-", 1)[1]
        for needle in {code, secret, secret.replace("-", "")}:
            for form in (needle, needle.lower()):
                assert form.encode() not in raw
                assert form.encode("utf-16-le") not in raw
        for digest in (hashlib.sha256, hashlib.md5, hashlib.sha1):  # no unsalted fast hash either
            assert digest(code.encode()).digest() not in raw
            assert digest(code.encode()).hexdigest().encode() not in raw


def test_each_reader_has_its_own_salt_and_codes_differ(conn, study):
    _, _, readers = study
    codes = [code for _, code in readers.values()]
    assert len(set(codes)) == len(codes)
    rows = conn.execute("SELECT code_salt, code_hash FROM readers").fetchall()
    assert len({salt for salt, _ in rows}) == len(rows)
    assert all(len(h) == 32 for _, h in rows)


def test_reader_names_are_unique_within_a_study(conn, study):
    study_id, _, _ = study
    with pytest.raises(ValueError, match="already has a reader named 'Dr A'"):
        db.add_reader(conn, study_id, "Dr A")
    with pytest.raises(db.StudyNotFound, match="study 42"):
        db.add_reader(conn, 42, "Dr Z")
