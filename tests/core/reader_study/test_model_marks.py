"""The model as a localisation reader: its mark per case and type is the peak of its fold model's
Grad-CAM mapped back through the crop window (a real CV run, real DICOM, a real SQLite file)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import db
from core.data.ingest import ingest_folder
from core.data.transforms import CropROI
from core.learning.config import RunConfig
from core.learning.cv import run_cv
from core.reader_study import localisation
from core.reader_study.model_marks import compute_model_marks, peak_to_slice


def test_a_peak_maps_to_the_slice_pixel_under_it():
    heat = np.zeros((10, 10))
    heat[2, 7] = 1.0  # row 2, column 7 of a 10x10 crop of the window x 100..120, y 50..70
    # centre of crop pixel (7, 2) = window origin + (index + 0.5) * 2 slice pixels per crop pixel
    assert peak_to_slice(heat, (100, 50, 120, 70), (512, 512)) == (115, 55)
    assert peak_to_slice(heat, (-30, -30, -10, -10), (512, 512)) == (0, 0)  # clamped


@pytest.fixture(scope="module")
def model_study(small_cohort_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("model_marks_home")
    patch = pytest.MonkeyPatch()
    patch.setenv("CERVIXSCOPE_HOME", str(home))
    path = home / "m.db"
    conn = db.connect(path)
    crops = ingest_folder(small_cohort_dir, conn=conn, progress=False).crops
    cfg = RunConfig(model="cnn", weights="none", n_folds=3, seed=0)
    run_id = run_cv(crops, cfg, conn=conn, cache_dir=False)
    cases = db.cases_frame(conn)["case_id"].tolist()
    study = db.create_study(
        conn, name="model where", case_ids=cases, localise=True, model_run_id=run_id
    )
    conn.close()
    yield path, study, run_id
    patch.undo()


def test_every_case_gets_one_mark_per_type_at_its_gradcam_peak(model_study):
    from core.learning.gradcam import explaining_model, gradcam_map
    from core.reader_study.viewing import _decode, crop_roi, image_roi

    path, study, run_id = model_study
    stored, problems = compute_model_marks(study, db_path=path, progress=False)
    with db.connect(path) as conn:
        marks = db.model_marks_frame(conn, study, run_id)
        case_ids = db.get_study(conn, study)["case_ids"]
        case = case_ids[0]
        row = db.images_frame(conn, case).sort_values("image_id").iloc[0]
        image = np.asarray(_decode(conn, row).array, dtype=np.float32)
    assert not problems and stored == 3 * len(case_ids) == len(marks)
    # the first case, recomputed here from the crop the reader-facing code cuts (margin 0.1)
    roi = image_roi(row)
    heat = gradcam_map(explaining_model(run_id, case)[0], crop_roi(image, roi), 1)
    r, c = np.unravel_index(np.argmax(heat), heat.shape)
    x0, y0, x1, y1 = CropROI(roi, 0.1).window()
    expected = (
        math.floor(x0 + (c + 0.5) * (x1 - x0) / 100),
        math.floor(y0 + (r + 0.5) * (y1 - y0) / 100),
    )
    got = marks[(marks["case_id"] == case) & (marks["class"] == "AC")].iloc[0]
    assert (int(got["x"]), int(got["y"])) == expected
    assert x0 <= got["x"] < x1 and y0 <= got["y"] < y1  # inside the crop the model saw


def test_the_model_stands_beside_the_readers_in_the_analysis(model_study):
    path, study, run_id = model_study
    compute_model_marks(study, db_path=path, progress=False)
    with db.connect(path) as conn:
        readers = [db.add_reader(conn, study, name)[0] for name in ("Dr A", "Dr B")]
        work = {r: db.worklist(conn, study, r, "unaided") for r in readers}
        for r, frame in work.items():
            for case_id in frame["case_id"]:
                db.submit_read(conn, study_id=study, reader_id=r, case_id=case_id, arm="unaided",
                               label="SCC", confidences=[0.7, 0.15, 0.15], shown_at=None,
                               marks=[])  # fmt: skip
        preds = db.predictions_frame(conn, run_id).set_index("case_id")
        marks = db.model_marks_frame(conn, study, run_id)
        marks = marks[marks["class"] == "SCC"].set_index("case_id")
        boxes = {c: db.images_frame(conn, c).set_index("image_id") for c in marks.index}
    result = localisation.study_localisation(study, "SCC", db_path=path)
    model = result.foms.set_index("reader").loc["model"]
    assert model["arm"] == "standalone" and ("model", "standalone") in result.curves
    # no reader marked anything: every reader's localised fraction, and so their area, is 0
    assert result.foms.set_index("reader").loc[["Dr A", "Dr B"], "ALROC"].tolist() == [0, 0]
    # the model's ALROC by hand: a peak inside its image's box is a hit (radius 0), then pairs
    hit = {}
    for case, m in marks.iterrows():
        box = boxes[case].loc[m["image_id"]]
        hit[case] = (
            box["roi_x0"] <= m["x"] < box["roi_x1"] and box["roi_y0"] <= m["y"] < box["roi_y1"]
        )
    scc = [c for c in marks.index if preds.loc[c, "label"] == "SCC"]
    other = [c for c in marks.index if preds.loc[c, "label"] != "SCC"]
    wins = 0.0
    for d in scc:
        for n in other:
            if hit[d]:
                wins += (
                    1.0
                    if preds.loc[d, "p_SCC"] > preds.loc[n, "p_SCC"]
                    else 0.5 * (preds.loc[d, "p_SCC"] == preds.loc[n, "p_SCC"])
                )
    assert model["ALROC"] == pytest.approx(wins / (len(scc) * len(other)))
