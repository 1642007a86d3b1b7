"""``load_study_data(..., previous=...)``: a live study re-read by patching in only the reads
written since equals a full read, and anything else changed means a full read (real SQLite)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import db
from core.data.labels import CLASSES
from core.reader_study.study_data import load_study_data, raters


@pytest.fixture
def live_study(tmp_path):
    conn = db.connect(tmp_path / "live.db")
    rows = [{"patient_id": f"P{i:03d}", "label": CLASSES[i % 3]} for i in range(30)]
    db.upsert_cases(conn, rows)
    cases = sorted(db.cases_frame(conn)["case_id"])
    run_id = db.create_run(
        conn, model="resnet18", mode="features", config={}, seed=0, data_hash=None,
        device="cpu", weights="none", code_version=None, packages=None,
    )  # fmt: skip
    probs = np.random.default_rng(1).dirichlet([1, 1, 1], len(cases))
    db.save_predictions(
        conn, run_id, 0,
        [{"case_id": c, **{f"p_{n}": p[j] for j, n in enumerate(CLASSES)}}
         for c, p in zip(cases, probs, strict=True)],
    )  # fmt: skip
    study_id = db.create_study(
        conn, name="live", case_ids=cases, arms=("unaided", "aided"), model_run_id=run_id
    )
    readers = [db.add_reader(conn, study_id, f"Dr {n}")[0] for n in "AB"]
    rng = np.random.default_rng(0)

    def read(reader_id, case_ids, arm="unaided"):
        reads = [
            {
                "case_id": c,
                "label": CLASSES[rng.integers(3)],
                **dict(zip([f"c_{c}" for c in CLASSES], rng.dirichlet([1, 1, 1]), strict=True)),
            }
            for c in case_ids
        ]
        db.submit_reads(conn, study_id, reader_id, arm, reads)

    read(readers[0], cases[:20])
    read(readers[1], cases[:10])
    yield conn, study_id, cases, readers, read
    conn.close()


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.reads, b.reads)
    np.testing.assert_array_equal(a.read_ids, b.read_ids)
    assert a.read_mark == b.read_mark and a.simulated_readers == b.simulated_readers
    for arm in ("unaided", "aided"):
        ours, full = raters(a, arm), raters(b, arm)
        assert list(ours) == list(full)
        for name in ours:
            pd.testing.assert_frame_equal(ours[name], full[name])


@pytest.mark.parametrize("many", [64, 1], ids=["few changes", "many changes"])
def test_new_and_changed_reads_patched_in_equal_a_full_read(live_study, monkeypatch, many):
    conn, study_id, cases, readers, read = live_study
    monkeypatch.setattr("core.reader_study.study_data._MANY_CHANGES", many)
    earlier = load_study_data(conn, study_id)
    read(readers[0], cases[5:8])  # changed answers keep their place
    read(readers[1], cases[10:14])  # new ones come last
    read(readers[0], cases[:3], arm="aided")  # a new arm's first reads
    asked = []
    real = db.reads_since
    monkeypatch.setattr(db, "reads_since", lambda *a, **k: asked.append(a) or real(*a, **k))
    patched = load_study_data(conn, study_id, previous=earlier)
    assert [a[2] for a in asked] == [earlier.read_mark]  # only what was written since
    _same(patched, load_study_data(conn, study_id))
    assert patched.arms == ["unaided", "aided"]
    assert load_study_data(conn, study_id, previous=patched).reads.equals(patched.reads)


def test_a_new_reader_means_a_full_read(live_study, monkeypatch):
    conn, study_id, cases, readers, read = live_study
    earlier = load_study_data(conn, study_id)
    newcomer, _ = db.add_reader(conn, study_id, "Dr C", simulated=True)
    read(newcomer, cases[:4])
    asked = []
    real = db.reads_since
    monkeypatch.setattr(db, "reads_since", lambda *a, **k: asked.append(a) or real(*a, **k))
    again = load_study_data(conn, study_id, previous=earlier)
    assert [a[2:] for a in asked] == [()]  # every read, not only the newest
    _same(again, load_study_data(conn, study_id))
    assert again.simulated_readers == ["Dr C"]


def test_only_the_changed_readers_frames_are_built_again(live_study):
    conn, study_id, cases, readers, read = live_study
    earlier = load_study_data(conn, study_id)
    before = raters(earlier, "unaided")
    read(readers[1], cases[2:4])  # Dr B changes two answers, of cases the arm has
    patched = load_study_data(conn, study_id, previous=earlier)
    after = raters(patched, "unaided", earlier=(earlier.read_mark, before))
    _same(patched, load_study_data(conn, study_id))
    full = raters(load_study_data(conn, study_id), "unaided")
    assert list(after) == list(full) == ["Model", "Dr A", "Dr B"]
    for name in after:
        pd.testing.assert_frame_equal(after[name], full[name])
    assert after["Dr A"] is before["Dr A"] and after["Model"] is before["Model"]
    assert not after["Dr B"].equals(before["Dr B"])


def test_a_case_new_to_the_arm_gives_the_model_that_case(live_study):
    conn, study_id, cases, readers, read = live_study
    earlier = load_study_data(conn, study_id)
    before = raters(earlier, "unaided")
    read(readers[1], cases[25:27])  # no reader of the arm had read these
    patched = load_study_data(conn, study_id, previous=earlier)
    after = raters(patched, "unaided", earlier=(earlier.read_mark, before))
    assert set(cases[25:27]) <= set(after["Model"]["case_id"])
    full = raters(load_study_data(conn, study_id), "unaided")
    pd.testing.assert_frame_equal(after["Model"], full["Model"])


def test_frames_of_other_reads_are_never_reused(live_study):
    conn, study_id, cases, readers, read = live_study
    earlier = load_study_data(conn, study_id)
    read(readers[0], cases[:2])
    patched = load_study_data(conn, study_id, previous=earlier)
    stale = {"Dr A": pd.DataFrame(), "Dr B": pd.DataFrame()}  # not of the reads it was patched from
    named = raters(patched, "unaided", earlier=(earlier.read_mark + 99, stale))
    assert all(len(frame) for frame in named.values())
