"""Localisation analysis of a reader study: was the reader looking at the lesion?

**Hits.** A mark (a click, or the centre of a dragged box) is a hit when it falls inside the
reference ROI of its slice, or within the study's acceptance radius of it: the distance from the
mark to the nearest ROI pixel, in mm from the slice's pixel spacing (columns along x, rows along
y), is at most ``hit_radius_mm``. The reference ROI is the case image's lesion box, the one the
model's crop was cut from (the manifest's box, its mask's bounds or the chosen annotator's
marks). A mark on a slice without an ROI is a miss. The rule is stored with the study and
printed with every result (:func:`HitRule.describe`).

**Figures of merit, per type.** Every case has a lesion here, so a type plays the part of
"diseased": for type T, the cases whose truth is T are diseased, the others non-diseased, and a
read's rating is its confidence in T. Calling T while looking at the right place is a lesion
localisation; every other mark with that rating is a non-lesion localisation.
- wAFROC (RJafroc's definition, one lesion per case, weight 1): FP rating of a non-T case = its
  rating if marked, -inf if not; LL rating of a T case = its rating if a mark hit, -inf if not.
- LROC: every case's rating, and its *first* mark decides a correct localisation (no mark: not
  localised). The area is RJafroc's ALROC up to FPF = 1.
Both go through the Obuchowski-Rockette engine with the arms as modalities, on the readers who
read every case in every arm.

**The model** is one more reader when ``cervixscope study model-marks`` has marked the study
(:mod:`core.reader_study.model_marks`): its rating is its out-of-fold probability of T, its one
mark the peak of its Grad-CAM for T. Its figures of merit and curves stand beside the readers'
("model", arm "standalone"); the readers' OR analysis does not include it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import db
from core.data.labels import CLASSES
from core.statistics import localisation, mrmc


@dataclass(frozen=True)
class HitRule:
    """Inside the reference ROI, or within ``radius_mm`` of it."""

    radius_mm: float = 0.0

    def describe(self) -> str:
        if self.radius_mm <= 0:
            return "a mark is a hit when it falls inside the reference ROI of its slice"
        return (
            "a mark is a hit when it falls inside the reference ROI of its slice or within "
            f"{self.radius_mm:g} mm of it (pixel spacing of the slice)"
        )


def mark_centre(mark) -> tuple[float, float]:
    """The point a mark names: the click, or the centre of the dragged box (pixels)."""
    return (float(mark["x0"]) + float(mark["x1"])) / 2, (float(mark["y0"]) + float(mark["y1"])) / 2


def distance_mm(mark, roi, row_mm: float | None, col_mm: float | None) -> float:
    """Distance from a mark to the nearest pixel of the ROI ``x0, y0, x1, y1`` (x1, y1 exclusive):
    0 inside; NaN when the mark is outside and the slice has no pixel spacing."""
    x, y = mark_centre(mark)
    x0, y0, x1, y1 = (float(v) for v in roi)
    dx = max(x0 - x, 0.0, x - (x1 - 1))
    dy = max(y0 - y, 0.0, y - (y1 - 1))
    if dx == 0 and dy == 0:
        return 0.0
    if row_mm is None or col_mm is None or not (row_mm == row_mm and col_mm == col_mm):
        return math.nan
    return math.hypot(dx * float(col_mm), dy * float(row_mm))


def is_hit(mark, roi, rule: HitRule) -> bool:
    """Whether ``mark`` (a :mod:`db.read_marks` row) hits ``roi`` (None: its slice has none)."""
    if roi is None:
        return False
    d = distance_mm(mark, roi, mark.get("row_spacing_mm"), mark.get("col_spacing_mm"))
    return d == 0.0 or (rule.radius_mm > 0 and d <= rule.radius_mm)


def _image_rois(conn, case_ids) -> dict:
    from core.reader_study.viewing import image_roi

    out = {}
    for case_id in case_ids:
        for _, row in db.images_frame(conn, case_id).iterrows():
            out[str(row["image_id"])] = image_roi(row)
    return out


def scored_model(conn, study: dict, rule: HitRule, rois: dict) -> pd.DataFrame | None:
    """The model's reads: ``case_id, truth, c_<type>`` (out-of-fold probabilities) and
    ``hit_<type>`` (its Grad-CAM peak for that type hit), or None before model-marks ran."""
    run_id = study.get("model_run_id")
    marks = db.model_marks_frame(conn, study["study_id"], run_id) if run_id else pd.DataFrame()
    if marks.empty:
        return None
    preds = db.predictions_frame(conn, run_id).set_index("case_id")
    cases = [c for c in study["case_ids"] if c in preds.index]
    out = pd.DataFrame({"case_id": cases, "truth": preds.loc[cases, "label"].to_numpy()})
    for cls in CLASSES:
        out[f"c_{cls}"] = preds.loc[cases, f"p_{cls}"].to_numpy()
        mine = marks[marks["class"] == cls].set_index("case_id")
        out[f"hit_{cls}"] = [
            c in mine.index
            and is_hit({**mine.loc[c].to_dict(), "x0": mine.loc[c, "x"], "x1": mine.loc[c, "x"],
                        "y0": mine.loc[c, "y"], "y1": mine.loc[c, "y"]},
                       rois.get(str(mine.loc[c, "image_id"])), rule)
            for c in cases
        ]  # fmt: skip
    return out


def scored_reads(conn, study_id: int) -> tuple[pd.DataFrame, HitRule]:
    """The study's reads with ``marks`` (list of dicts, each with ``hit``) and the rule used.

    Researcher pages only: it carries the truth.
    """
    study = db.get_study(conn, study_id)
    rule = HitRule(float(study.get("hit_radius_mm") or 0.0))
    reads = db.reads_frame(conn, study_id)
    marks = db.read_marks_frame(conn, study_id)
    rois = _image_rois(conn, study["case_ids"])
    by_read: dict[int, list[dict]] = {}
    for mark in marks.to_dict("records"):
        roi = rois.get(str(mark["image_id"])) if mark["image_id"] else None
        mark["hit"] = is_hit(mark, roi, rule)
        by_read.setdefault(int(mark["read_id"]), []).append(mark)
    reads["marks"] = [by_read.get(int(r), []) for r in reads["read_id"]]
    return reads, rule


@dataclass
class TypeLocalisation:
    """The localisation analysis of one type (see the module docstring)."""

    type: str
    rule: str
    foms: pd.DataFrame  # reader, arm, wAFROC, ALROC
    wafroc_or: mrmc.ORResult | None
    alroc_or: mrmc.ORResult | None
    curves: dict = field(default_factory=dict)  # (reader, arm) -> {"lroc": ..., "afroc": ...}
    readers: list = field(default_factory=list)
    n_cases: int = 0
    note: str = ""


def _crossed(reads: pd.DataFrame) -> tuple[list, list, list]:
    """Arms, readers who read every case in every arm, and the cases."""
    arms = sorted(reads["arm"].unique().tolist())
    cases = sorted(reads["case_id"].unique().tolist())
    counts = reads.groupby("display_name")[["arm", "case_id"]].apply(
        lambda f: len(f.drop_duplicates())
    )
    readers = sorted(counts.index[counts == len(arms) * len(cases)].tolist())
    return arms, readers, cases


def _cubes(reads, arms, readers, cases, cls: str):
    """Ratings (t, J, K), first-mark hit (t, J, K), any-hit (t, J, K) and marks counts."""
    shape = (len(arms), len(readers), len(cases))
    rating, first_hit, any_hit, n_marks = (np.zeros(shape) for _ in range(4))
    index = {
        (r.arm, r.display_name, r.case_id): r for r in reads.itertuples(index=False)
    }  # fmt: skip
    for a, arm in enumerate(arms):
        for j, reader in enumerate(readers):
            for k, case in enumerate(cases):
                row = index[(arm, reader, case)]
                rating[a, j, k] = float(getattr(row, f"c_{cls}"))
                hits = [bool(m["hit"]) for m in row.marks]
                first_hit[a, j, k] = bool(hits and hits[0])
                any_hit[a, j, k] = any(hits)
                n_marks[a, j, k] = len(hits)
    return rating, first_hit.astype(bool), any_hit.astype(bool), n_marks.astype(int)


def _froc_data(rating, any_hit, n_marks, diseased, arms, readers, cases) -> localisation.FrocData:
    """One lesion per case; a T case's missing marks and every non-T case's marks are NLs."""
    misses = np.where(diseased, n_marks - any_hit, n_marks)
    width = max(int(misses.max(initial=0)), 1)
    slots = np.arange(width)[None, None, None, :] < misses[..., None]
    nl = np.where(slots, rating[..., None], -np.inf)
    ll = np.where(any_hit, rating, -np.inf)[:, :, diseased][..., None]
    weights = np.ones((int(diseased.sum()), 1))
    return localisation.FrocData(
        nl, ll, diseased, weights, tuple(arms), tuple(readers), tuple(cases)
    )


def type_localisation(
    reads: pd.DataFrame, rule: HitRule, cls: str, *, model: pd.DataFrame | None = None
) -> TypeLocalisation:
    """wAFROC and LROC of every reader and arm for type ``cls``, with their OR analyses; and the
    model's (:func:`scored_model`) beside them when given."""
    if cls not in CLASSES:
        raise ValueError(f"type {cls!r} is not one of {', '.join(CLASSES)}")
    arms, readers, cases = _crossed(reads)
    truth = reads.drop_duplicates("case_id").set_index("case_id")["truth"].reindex(cases)
    diseased = (truth == cls).to_numpy()
    result = TypeLocalisation(cls, rule.describe(), pd.DataFrame(), None, None, readers=readers)
    result.n_cases = len(cases)
    if not readers or diseased.sum() < 2 or (~diseased).sum() < 2:
        result.note = (
            f"Not enough to analyse {cls}: {len(readers)} reader(s) read every case, "
            f"{int(diseased.sum())} {cls} case(s) and {int((~diseased).sum())} other(s)."
        )
        return result
    rating, first_hit, any_hit, n_marks = _cubes(reads, arms, readers, cases, cls)
    froc = _froc_data(rating, any_hit, n_marks, diseased, arms, readers, cases)
    lroc_kernel = np.stack([np.stack([localisation.alroc_pairs(
        rating[a, j, ~diseased], rating[a, j, diseased], first_hit[a, j, diseased])
        for j in range(len(readers))]) for a in range(len(arms))])  # fmt: skip
    theta = {"wAFROC": localisation.wafroc(froc), "ALROC": lroc_kernel.mean(axis=(-2, -1))}
    jk = {"wAFROC": localisation.wafroc_jackknife(froc),
          "ALROC": localisation.pair_kernel_jackknife(lroc_kernel, diseased)}  # fmt: skip
    analysis = "random_readers" if len(readers) >= 2 else "fixed_readers"
    ors = {
        name: mrmc.or_analysis_of_jackknife(
            f"{name} ({cls})", jk[name], theta[name], modalities=arms, readers=readers,
            cases=cases, analysis=analysis,
        )
        for name in theta
    }  # fmt: skip
    result.wafroc_or, result.alroc_or = ors["wAFROC"], ors["ALROC"]
    result.foms = pd.DataFrame(
        [{"reader": r, "arm": arm, "wAFROC": theta["wAFROC"][a, j], "ALROC": theta["ALROC"][a, j]}
         for a, arm in enumerate(arms) for j, r in enumerate(readers)]
    )  # fmt: skip
    fp = localisation.froc.false_positive_ratings(froc)
    for a, arm in enumerate(arms):
        for j, reader in enumerate(readers):
            curve = localisation.lroc_curve(
                rating[a, j, ~diseased], rating[a, j, diseased], first_hit[a, j, diseased]
            )
            afroc = localisation.afroc_points(fp[a, j], froc.ll[a, j], froc.weights)
            result.curves[(reader, arm)] = {"lroc": curve, "afroc": afroc}
    if model is not None:
        _add_model(result, model, cls)
    return result


def _add_model(result: TypeLocalisation, model: pd.DataFrame, cls: str) -> None:
    """The model's ALROC and wAFROC (one mark per case) and its curves, beside the readers'."""
    diseased = (model["truth"] == cls).to_numpy()
    if diseased.sum() < 1 or (~diseased).sum() < 1:
        return
    rating = model[f"c_{cls}"].to_numpy(float)
    hit = model[f"hit_{cls}"].to_numpy(bool)
    curve = localisation.lroc_curve(rating[~diseased], rating[diseased], hit[diseased])
    one = lambda a: a[None, None]  # noqa: E731 - one modality, one reader
    froc = localisation.FrocData(
        nl=one(np.where(diseased & hit, -np.inf, rating)[:, None]),
        ll=one(np.where(hit, rating, -np.inf)[diseased][:, None]),
        diseased=diseased, weights=np.ones((int(diseased.sum()), 1)),
        modalities=("standalone",), readers=("model",), cases=tuple(model["case_id"]),
    )  # fmt: skip
    fp = localisation.froc.false_positive_ratings(froc)[0, 0]
    row = {"reader": "model", "arm": "standalone",
           "wAFROC": float(localisation.wafroc(froc)[0, 0]), "ALROC": curve.area}  # fmt: skip
    result.foms = pd.concat([result.foms, pd.DataFrame([row])], ignore_index=True)
    afroc = localisation.afroc_points(fp, froc.ll[0, 0], froc.weights)
    result.curves[("model", "standalone")] = {"lroc": curve, "afroc": afroc}


def study_localisation(study_id: int, cls: str, *, db_path=None) -> TypeLocalisation:
    """:func:`type_localisation` of a study's stored reads (researcher pages only)."""
    with db.connect(db_path) as conn:
        reads, rule = scored_reads(conn, study_id)
        study = db.get_study(conn, study_id)
        model = scored_model(conn, study, rule, _image_rois(conn, study["case_ids"]))
    return type_localisation(reads, rule, cls, model=model)
