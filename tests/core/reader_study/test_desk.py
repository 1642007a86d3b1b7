"""The reading desk's round trip on a real SQLite file: each answer stored once per attempt however
often the browser resends it, an update is an audited change, refused answers (closed study,
revoked session, malformed, another reader's attempt) are kept for the admin with their reason and
never stored, the reply carries the case on screen and the next unread ones the browser lacks; and
the pixel transport is lossless."""

from __future__ import annotations

import numpy as np
import pytest

import db
import db.attempts
from core.reader_study import desk
from core.reader_study.pixel_transport import compress_pixels, decompress_pixels, pack, unpack
from tests.db.conftest import make_cases


@pytest.fixture
def study(tmp_path):
    path = tmp_path / "desk.db"
    conn = db.connect(path)
    try:
        cases = make_cases(conn, 6)
        study_id = db.create_study(conn, name="desk", case_ids=cases)
        reader_id, _ = db.add_reader(conn, study_id, "Dr Desk")
        other_id, _ = db.add_reader(conn, study_id, "Dr Other")
    finally:
        conn.close()
    return path, study_id, reader_id, other_id


def _sync(study, reader=None, **request):
    path, study_id, reader_id, _ = study
    reply = desk.sync(study_id, reader or reader_id, "unaided", desk.SyncRequest(**request),
                      db_path=path)  # fmt: skip
    return reply, unpack(reply.message)[0]


def _pending(header, position, label="AC", attempt=None, **extra):
    row = next(w for w in header["work"] if w[0] == position)
    return {"attempt": attempt or f"attempt-{position}-{label}", "arm": "unaided",
            "position": position, "display_id": row[1], "label": label, "certainty": "certain",
            "duration_ms": 2500, "age_ms": 40, **extra}  # fmt: skip


def _reads(study):
    path, study_id, _, _ = study
    conn = db.connect(path)
    try:
        return db.reads_frame(conn, study_id), db.audit_frame(conn, study_id)
    finally:
        conn.close()


def test_the_first_reply_holds_the_case_on_screen_and_the_next_two(study):
    reply, header = _sync(study)
    assert header["status"] == "open" and header["start"] == 1
    assert [c["position"] for c in header["cases"]] == [1, 2, 3] and reply.sent == {1, 2, 3}
    assert [w[0] for w in header["work"]] == list(range(1, 7)) and not any(
        w[2] for w in header["work"]
    )
    # a case without an image still gets its entry, saying so
    assert header["cases"][0]["image_problem"] and header["cases"][0]["slices"] == []


def test_a_resent_answer_is_stored_once_and_acknowledged_each_time(study):
    _, header = _sync(study)
    answer = _pending(header, 1)
    for _ in range(3):  # the browser resends until it sees the acknowledgement
        reply, again = _sync(study, at=2, pending=(answer,), have=frozenset({1, 2, 3}))
        assert reply.acks == (answer["attempt"],) and not again["refused"]
    reads, audit = _reads(study)
    assert (
        len(reads) == 1
        and reads["label"].item() == "AC"
        and int(reads["duration_ms"].item()) == 2500
    )
    assert audit["action"].tolist() == ["insert"]  # no second audit row for a duplicate
    assert [c["position"] for c in again["cases"]] == [4]  # only what the browser lacks
    assert again["work"][0][2] is True


def test_a_changed_answer_is_a_new_attempt_and_an_audited_update(study):
    _, header = _sync(study)
    _sync(study, pending=(_pending(header, 1, "AC"),))
    _sync(study, pending=(_pending(header, 1, "ASC"),))
    reads, audit = _reads(study)
    assert reads["label"].tolist() == ["ASC"] and int(reads["revision"].item()) == 2
    assert audit["action"].tolist() == ["insert", "update"]


def test_a_closed_study_refuses_queued_answers_and_keeps_them_for_the_admin(study):
    path, study_id, _, _ = study
    _, header = _sync(study)
    conn = db.connect(path)
    try:
        db.close_study(conn, study_id)
    finally:
        conn.close()
    answer = _pending(header, 2, "SCC")
    reply, refused = _sync(study, pending=(answer,))
    assert (
        refused["status"] == "stopped" and "closed" in refused["message"] and not refused["cases"]
    )
    assert refused["refused"][0][0] == answer["attempt"] and not reply.acks
    conn = db.connect(path)
    try:
        db.set_study_status(conn, study_id, "open")
        kept = db.attempts.refused_answers_frame(conn, study_id)
    finally:
        conn.close()
    assert kept[["attempt_id", "label", "position", "reader"]].values.tolist() == [
        [answer["attempt"], "SCC", 2, "Dr Desk"]
    ]
    assert kept["case_id"].item() is None or isinstance(kept["case_id"].item(), str)
    # sent again once the study is open: still refused, never stored behind the admin's back
    _, again = _sync(study, pending=(answer,))
    assert again["refused"][0][0] == answer["attempt"]
    assert _reads(study)[0].empty


def test_a_refused_session_keeps_every_answer_and_sends_no_case(study):
    path, study_id, reader_id, _ = study
    _, header = _sync(study)
    answers = (_pending(header, 1), _pending(header, 2))
    reply = desk.sync(study_id, reader_id, "unaided", desk.SyncRequest(pending=answers),
                      refuse="your code was revoked", db_path=path)  # fmt: skip
    out = unpack(reply.message)[0]
    assert out["status"] == "stopped" and out["message"] == "your code was revoked"
    assert [r[0] for r in out["refused"]] == [a["attempt"] for a in answers]
    conn = db.connect(path)
    try:
        assert len(db.attempts.refused_answers_frame(conn, study_id)) == 2
    finally:
        conn.close()
    assert _reads(study)[0].empty


def test_malformed_or_foreign_answers_are_refused_with_a_reason(study):
    _, _, _, other_id = study
    _, header = _sync(study)
    _, other_header = _sync(study, reader=other_id)
    taken = _pending(other_header, 1, attempt="shared-attempt-id")
    _sync(study, reader=other_id, pending=(taken,))
    bad = [
        {**_pending(header, 1), "attempt": "x"},  # too short
        {**_pending(header, 2), "label": "Adeno"},
        {**_pending(header, 3), "display_id": "C-NOTTHIS"},  # not the case at that position
        {**_pending(header, 4), "position": "four"},
        {**_pending(header, 5), "attempt": "shared-attempt-id"},  # another reader's attempt
        {**_pending(header, 6), "arm": "aided"},  # an arm the study has not
    ]
    reply, out = _sync(study, pending=tuple(bad))
    assert not reply.acks and len(out["refused"]) == len(bad)
    reasons = " | ".join(r[1] for r in out["refused"])
    for words in ("8-64", "Adeno", "C-NOTTHIS", "no case position", "another reader", "aided"):
        assert words in reasons, (words, reasons)
    reads, _ = _reads(study)
    assert len(reads) == 1  # the other reader's answer only


def test_wanted_positions_are_the_screen_and_the_unread_after_it():
    import pandas as pd

    work = pd.DataFrame({"position": [1, 2, 3, 4, 5], "read": [False, True, False, True, False]})
    assert desk.wanted_positions(work, 2) == [2, 3, 5]
    assert desk.wanted_positions(work, 5) == [5, 1, 3]  # then from the start
    assert desk.wanted_positions(work.assign(read=True), 3) == [3]


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (512, 512)])
def test_pixels_survive_the_transport_exactly(shape):
    rng = np.random.default_rng(sum(shape))
    raw = rng.integers(0, 65536, shape, dtype=np.uint16)
    raw.flat[0], raw.flat[-1] = 65535, 0  # the deltas wrap around
    blob = compress_pixels(raw)
    assert np.array_equal(decompress_pixels(blob, *shape), raw)
    smooth = np.tile(np.arange(shape[1], dtype=np.uint16) * 3, (shape[0], 1))
    if smooth.size > 10_000:  # zlib's own header dwarfs a tiny one
        assert len(compress_pixels(smooth)) < smooth.nbytes / 10  # deltas of a ramp: tiny
    with pytest.raises(ValueError, match="needs"):
        decompress_pixels(blob, shape[0] + 1, shape[1])


def test_a_message_is_its_header_and_the_blobs_it_names():
    header, blobs = unpack(pack({"a": [1, "é"]}, [b"xyz", b"", b"\x00\x01"]))
    assert header["a"] == [1, "é"] and blobs == [b"xyz", b"", b"\x00\x01"]
    with pytest.raises(ValueError, match="magic"):
        unpack(b"JUNK" + bytes(8))
