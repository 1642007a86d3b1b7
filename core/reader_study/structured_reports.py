"""Reader reports in DICOM: each read as a DICOM SR measurement report (TID 1500, highdicom).

One Comprehensive 3D SR per read. The reader is the person observer; each mark is a planar ROI
group (TID 1410) whose image region (a POINT at the pixel's centre, or the box as a closed
POLYLINE) references its source slice by SOP Instance UID; a read without marks is one group
(TID 1501) referencing the case's first slice. Every group carries the same finding and
evaluations: the type as its finding type, the certainty as a qualitative evaluation, the three
per-class confidences (percent) and the time on the case (seconds) as measurements.

Types SCC and AC use their SNOMED CT codes; adenosquamous carcinoma, the certainty and the
confidences use CervixScope's private coding scheme ``99CSCOPE`` (no standard code was checked
here). :func:`read_report` reads a file back into the same read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.data.dicom_io import person_name, with_type2_attributes
from core.data.labels import CLASSES

SCHEME = "99CSCOPE"


def _code(value: str, meaning: str, scheme: str = SCHEME):
    import highdicom as hd

    return hd.sr.CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


def _type_codes() -> dict:
    return {
        "SCC": _code("1162767002", "Squamous cell carcinoma", "SCT"),
        "AC": _code("1187332001", "Adenocarcinoma", "SCT"),
        "ASC": _code("ASC", "Adenosquamous carcinoma"),
    }


def _certainty_codes() -> dict:
    return {name: _code(f"CERTAINTY-{name.upper()}", name) for name in ("unsure", "probable", "certain")}  # fmt: skip


@dataclass(frozen=True)
class ReportedRead:
    """What one SR file says about a read (and what :func:`write_report` is given)."""

    reader: str
    case: str  # the display id, never the case id
    label: str
    certainty: str | None
    confidences: dict  # class -> percent
    duration_s: float | None
    marks: list = field(default_factory=list)  # {"sop_instance_uid", "x", "y"} or box corners


def _region(mark: dict, sop_class_uid: str):
    import highdicom as hd

    source = hd.sr.SourceImageForRegion(sop_class_uid, mark["sop_instance_uid"])
    if "x" in mark:
        data = np.array([[mark["x"] + 0.5, mark["y"] + 0.5]])
        return hd.sr.ImageRegion(hd.sr.GraphicTypeValues.POINT, data, source)
    x0, y0, x1, y1 = (float(mark[k]) for k in ("x0", "y0", "x1", "y1"))
    corners = [[x0, y0], [x1 + 1, y0], [x1 + 1, y1 + 1], [x0, y1 + 1], [x0, y0]]
    return hd.sr.ImageRegion(hd.sr.GraphicTypeValues.POLYLINE, np.array(corners), source)


def _evaluations(read: ReportedRead):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    certainty = []
    if read.certainty:
        name = _code("CERTAINTY", "Reader certainty")
        certainty = [hd.sr.QualitativeEvaluation(name, _certainty_codes()[read.certainty])]
    measures = [
        hd.sr.Measurement(
            name=_code(f"CONF-{cls}", f"Confidence {cls}"),
            value=float(read.confidences[cls]),
            unit=_code("%", "percent", "UCUM"),
        )
        for cls in CLASSES
    ]
    if read.duration_s is not None:
        measures.append(
            hd.sr.Measurement(
                name=codes.DCM.Time, value=float(read.duration_s), unit=codes.UCUM.Second
            )
        )
    return certainty, measures


def write_report(read: ReportedRead, sources: list, out: Path, *, series_uid: str) -> Path:
    """Write ``read`` as an SR file at ``out``; ``sources`` are pydicom headers of the slices its
    marks reference (the first one stands for the case when there is no mark)."""
    import highdicom as hd

    evidence = [with_type2_attributes(ds) for ds in sources]
    by_uid = {str(ds.SOPInstanceUID): ds for ds in evidence}
    certainty, measures = _evaluations(read)
    finding = _type_codes()[read.label]
    groups = []
    for i, mark in enumerate(read.marks, start=1):
        ds = by_uid[mark["sop_instance_uid"]]
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(hd.UID(), f"{read.case}/mark {i}"),
            referenced_region=_region(mark, str(ds.SOPClassUID)), finding_type=finding,
            measurements=measures, qualitative_evaluations=certainty,
        ))  # fmt: skip
    if not groups:
        first = evidence[0]
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(hd.UID(), f"{read.case}/read"), finding_type=finding,
            measurements=measures, qualitative_evaluations=certainty,
            source_images=[hd.sr.SourceImageForMeasurementGroup(
                str(first.SOPClassUID), str(first.SOPInstanceUID))],
        ))  # fmt: skip
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept("121006", "DCM", "Person"),
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name=person_name(read.reader)
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=_code("READ", "Reader study read"),
        imaging_measurements=groups,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence, content=report[0], series_instance_uid=series_uid, series_number=900,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="CervixScope", is_complete=True,
    )  # fmt: skip
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sr.save_as(out)
    return out


def _group_values(group) -> tuple[str, str | None, dict, float | None]:
    by_code = {v.value: k for k, v in _type_codes().items()}
    label = by_code[group.finding_type.value]
    evaluations = group.get_qualitative_evaluations()
    certainty = str(evaluations[0].value.meaning) if evaluations else None
    confidences, duration = {}, None
    for m in group.get_measurements():
        code = str(m.name.value)
        if code.startswith("CONF-"):
            confidences[code[5:]] = float(m.value)
        elif code == "110858":
            duration = float(m.value)
    return label, certainty, confidences, duration


def _mark_of(group) -> dict:
    region = group.roi
    uid = str(region.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
    data = np.asarray(region.value, dtype=float).reshape(-1, 2)
    if str(region.graphic_type.value) == "POINT":
        return {"sop_instance_uid": uid, "x": int(data[0, 0] - 0.5), "y": int(data[0, 1] - 0.5)}
    lo, hi = data.min(axis=0), data.max(axis=0)
    return {"sop_instance_uid": uid, "x0": int(lo[0]), "y0": int(lo[1]),
            "x1": int(hi[0]) - 1, "y1": int(hi[1]) - 1}  # fmt: skip


def read_report(path: Path) -> ReportedRead:
    """A read back from an SR file written by :func:`write_report` (highdicom)."""
    import highdicom as hd

    sr = hd.sr.srread(str(path))
    planar = sr.content.get_planar_roi_measurement_groups()
    groups = planar or sr.content.get_image_measurement_groups()
    label, certainty, confidences, duration = _group_values(groups[0])
    observer = sr.content.get_observer_contexts()[0]
    reader = str(observer.observer_identifying_attributes[0].value)
    return ReportedRead(
        reader=reader.rstrip("^"), case=str(groups[0].tracking_identifier).rsplit("/", 1)[0],
        label=label, certainty=certainty, confidences=confidences, duration_s=duration,
        marks=[_mark_of(g) for g in planar],
    )  # fmt: skip


@dataclass
class ExportResult:
    """Files written, and one line per read that could not be (the rest still were)."""

    files: list = field(default_factory=list)
    problems: list = field(default_factory=list)


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(text))[:40]


def _reported(conn, study: dict, read, marks) -> tuple[ReportedRead, list]:
    """The read as an SR states it, and the headers of the slices it references."""
    import pydicom

    from core.reader_study import answers
    from core.reader_study.slice_sources import slice_sources

    sources = slice_sources(conn, read.case_id, series=study.get("slices") == "series")
    if isinstance(sources, str) or not sources:
        raise ValueError(f"case {read.display_id}: {sources or 'no slice'}")
    percent = answers.as_percent({c: getattr(read, f"c_{c}") for c in CLASSES})
    shown = []
    for m in marks:
        mark = {"sop_instance_uid": m["sop_instance_uid"]}
        if m["kind"] == "point":
            mark.update(x=int(m["x0"]), y=int(m["y0"]))
        else:
            mark.update({k: int(m[k]) for k in ("x0", "y0", "x1", "y1")})
        shown.append((mark, int(m["slice"])))
    slices = sorted({i for _, i in shown}) or [0]
    headers = [pydicom.dcmread(sources[i].path, stop_before_pixels=True) for i in slices]
    duration = None if read.duration_ms != read.duration_ms else read.duration_ms / 1000
    return ReportedRead(
        reader=str(read.display_name), case=str(read.display_id), label=str(read.label),
        certainty=answers.certainty_of(str(read.label), percent), confidences=percent,
        duration_s=None if duration is None else float(duration), marks=[m for m, _ in shown],
    ), headers  # fmt: skip


def export_study_reports(study_id: int, out_dir: Path, *, db_path=None) -> ExportResult:
    """One SR file per read of the study under ``out_dir``; a read that fails is reported and the
    others are still written."""
    import highdicom as hd

    import db

    out_dir, result = Path(out_dir), ExportResult()
    with db.connect(db_path) as conn:
        study = db.get_study(conn, study_id)
        reads = db.reads_frame(conn, study_id)
        marks = db.read_marks_frame(conn, study_id)
        by_read = {int(k): g.to_dict("records") for k, g in marks.groupby("read_id")}
        series_uid = hd.UID()
        for read in reads.itertuples(index=False):
            name = f"{_safe(study['name'])}_{_safe(read.display_name)}_{_safe(read.display_id)}"
            try:
                reported, headers = _reported(conn, study, read, by_read.get(int(read.read_id), []))
                path = out_dir / f"{name}_{_safe(read.arm)}.dcm"
                result.files.append(write_report(reported, headers, path, series_uid=series_uid))
            except (ValueError, KeyError, OSError) as exc:
                result.problems.append(f"read {int(read.read_id)} ({read.display_id}): {exc}")
    return result
