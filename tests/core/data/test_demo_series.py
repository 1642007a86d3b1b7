"""The whole-series demo cohort (issue 24): every slice of each series is written as one DICOM
series in order, the lesion only on the slices through it, and the manifest names only the
slices through its middle, each with a box around the lesion; the reading service serves the whole
series in order when a study asks for it, the model's slices with their boxes."""

from __future__ import annotations

import csv

import numpy as np
import pydicom
import pytest

import db
from core.data.demo_data import generate_series_cohort
from core.data.ingest import ingest_folder
from core.reader_study import reading


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    out = tmp_path_factory.mktemp("series")
    manifest = generate_series_cohort(out, seed=3, counts=(1, 1, 1), n_slices=12, size=128)
    return out, list(csv.DictReader(open(manifest, encoding="utf-8")))


def test_each_patient_is_one_ordered_series_with_the_lesion_slices_named(series):
    out, rows = series
    for patient in ("SER-0001", "SER-0002", "SER-0003"):
        files = sorted((out / patient).glob("*.dcm"))
        headers = [pydicom.dcmread(f) for f in files]
        assert len(files) == 12 and len({h.SeriesInstanceUID for h in headers}) == 1
        assert [int(h.InstanceNumber) for h in headers] == list(range(1, 13))
        assert all(h.pixel_array.shape == (128, 128) for h in headers)
        named = [r for r in rows if r["patient_id"] == patient]
        assert 1 <= len(named) < 12, "only the slices through the lesion's middle"
        numbers = sorted(int(r["path"][-8:-4]) for r in named)
        assert numbers == list(range(numbers[0], numbers[-1] + 1)), "adjacent, in the middle"
        for r in named:  # the box holds the lesion: brighter or darker than the cervix around
            x0, y0, x1, y1 = (int(r[k]) for k in ("x0", "y0", "x1", "y1"))
            assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128
        first, last = headers[0].pixel_array, headers[-1].pixel_array
        assert not np.array_equal(first, last)


def test_a_series_study_serves_every_slice_in_order_with_the_model_boxes(series, tmp_path):
    out, rows = series
    path = tmp_path / "series.db"
    conn = db.connect(path)
    try:
        ingest_folder(out, conn=conn, progress=False)
        cases = db.cases_frame(conn)["case_id"].tolist()
        whole = db.create_study(conn, name="whole", case_ids=cases, slices="series")
        model = db.create_study(conn, name="model", case_ids=cases)
        reader, _ = db.add_reader(conn, whole, "Dr W")
        other, _ = db.add_reader(conn, model, "Dr M")
        with pytest.raises(ValueError, match="slices must be one of"):
            db.create_study(conn, name="bad", case_ids=cases, slices="all")
        assert db.get_study(conn, whole)["slices"] == "series"
    finally:
        conn.close()
    boxed_keys, model_keys = set(), set()
    for position in (1, 2, 3):  # each reader reads the cases in their own order
        case, sources = reading.case_sources(whole, reader, "unaided", position, db_path=path)
        assert len(sources) == 12 and not case.image_problem
        names = [s.path.rsplit("/", 1)[1] for s in sources]
        assert names == [f"IM{i:04d}.dcm" for i in range(1, 13)]
        boxed = [s for s in sources if s.roi is not None]
        assert 1 <= len(boxed) < 12
        boxed_keys |= {s.key for s in boxed}
        _, mine = reading.case_sources(model, other, "unaided", position, db_path=path)
        model_keys |= {s.key for s in mine}
    assert boxed_keys == model_keys, "the boxed slices of the series are the model's"
    assert len(model_keys) == len(rows)
