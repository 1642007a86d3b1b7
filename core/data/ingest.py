"""Turn a folder of DICOM slices plus a manifest into lesion crops, a report, and case records.

Bad input never stops the batch: each unusable row becomes one `IngestIssue` in the report and
the rest is ingested. Results are cached in ``<data_dir>/.cervixscope-cache/`` under a key made
from the bytes of every referenced file, the manifest, and the crop parameters, so ingesting an
unchanged folder again only re-hashes the files.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.project import home
from core.data.dataset import CropSet
from core.data.dicom_io import DicomReadError, read_pixels
from core.data.manifest import IngestIssue, ManifestRow, read_manifest
from core.data.mark_geometry import MarkError, crop_box
from core.data.stored_marks import StoredMarks, stored_marks
from core.data.transforms import box_inside, lesion_crop
from core.data.labels import CLASSES
import db
from db.spreadsheet import escape_cell

__all__ = ["IngestIssue", "IngestResult", "ingest_folder", "looks_t2_sagittal"]

log = logging.getLogger(__name__)
MAX_CROP_SIZE = 1024  # pixels a side; the paper's crops are 100
PIPELINE_VERSION = "2"  # bump when the crop pipeline changes, so old caches are not reused
REPORT_COLUMNS = ("row", "path", "level", "problem")


@dataclass
class IngestResult:
    """What `ingest_folder` produced.

    ``cases`` rows carry ``case_id, label, synthetic, series_description, orientation,
    ingestion_id``; ``images`` rows carry ``image_id, case_id, source_path, frame, roi_x0..roi_y1,
    crop_cache, crop_index, rows, cols`` (the columns `db.upsert_cases`/`db.upsert_images` take).
    """

    crops: CropSet
    issues: list[IngestIssue]
    report_csv: Path
    cases: list[dict]
    images: list[dict]
    crop_cache: Path
    cache_key: str
    from_cache: bool = False
    ingestion_id: int | None = None
    n_rows: int = 0
    extra: dict = field(default_factory=dict)
    mark_versions: dict = field(default_factory=dict)  # image_id -> the mark version it was cut from

    @property
    def errors(self) -> list[IngestIssue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[IngestIssue]:
        return [i for i in self.issues if i.level == "warning"]

    def summary(self) -> str:
        """A few lines for a terminal: counts per class, skipped rows, where the report is."""
        case_ids, labels = self.crops.cases()
        per_class = Counter(CLASSES[i] for i in labels.tolist())
        mix = ", ".join(f"{name} {per_class.get(name, 0)}" for name in CLASSES)
        lines = [
            f"ingested {self.crops.n_images} images of {len(case_ids)} cases ({mix}) "
            f"from {self.n_rows} manifest rows{' [cached]' if self.from_cache else ''}",
            f"{len(self.errors)} errors (rows skipped), {len(self.warnings)} warnings",
        ]
        lines += [f"  {issue}" for issue in self.issues]
        lines.append(f"report: {self.report_csv}")
        return "\n".join(lines)


def looks_t2_sagittal(series_description: str, orientation: str) -> str | None:
    """Why a series does not look like T2 sagittal, or None when it does.

    Orientation comes from ImageOrientationPatient (see `core.data.dicom_io.orientation_label`); the
    weighting can only be guessed from SeriesDescription (``T2`` anywhere in it).
    """
    reasons = []
    if orientation != "sagittal":
        reasons.append(f"orientation is {orientation}, not sagittal")
    if "T2" not in series_description.upper():
        reasons.append(f"SeriesDescription {series_description!r} does not mention T2")
    if not reasons:
        return None
    return "; ".join(reasons) + " (expected T2 sagittal; ingested anyway)"


def contained(data_dir: Path, rel: str) -> Path | None:
    """``data_dir / rel`` with every link resolved, or None when that leaves ``data_dir``.

    The manifest check sees only the path's text; a symbolic link inside the folder can still
    point anywhere (``scans -> /``), so every file is checked again by where it really is.
    """
    path = (data_dir / rel).resolve()
    return path if path.is_relative_to(data_dir.resolve()) else None


def _file_digest(path: Path | None) -> str:
    if path is None:
        return "outside"
    if not path.is_file():
        return "missing"
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cache_key(data_dir: Path, manifest: Path, rows: list[ManifestRow], crop_size, margin,
               marks: StoredMarks) -> str:  # fmt: skip
    """Hash of everything that decides the crops: file bytes, manifest bytes, crop parameters,
    and the stored mark versions when some row takes its box from them."""
    h = hashlib.sha256()
    if any(row.box is None and row.mask is None for row in rows):
        h.update(f"marks={marks.digest()}|".encode())
    # The folder is part of the key: the cached records hold each image's absolute path.
    h.update(f"v{PIPELINE_VERSION}|size={crop_size}|margin={margin!r}|{data_dir}|".encode())
    h.update(manifest.read_bytes())
    digests: dict[str, str] = {}
    for row in rows:
        for rel in (row.path, row.mask):
            if rel is not None and rel not in digests:
                digests[rel] = _file_digest(contained(data_dir, rel))
    for rel in sorted(digests):
        h.update(f"|{rel}={digests[rel]}".encode())
    if any(row.site for row in rows):  # only then, so caches of site-less manifests stay valid
        h.update(b"|sites")
    return h.hexdigest()[:20]


def _mask_box(path: Path, rows: int, cols: int) -> tuple[float, float, float, float]:
    """Bounding box of the non-zero pixels of a mask file (.npy, an image, or DICOM)."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        mask = np.load(path, allow_pickle=False)
    elif suffix in (".png", ".tif", ".tiff", ".bmp"):
        from PIL import Image

        with Image.open(path) as img:
            mask = np.asarray(img.convert("L"))
    else:
        mask = read_pixels(path).array
    if mask.shape != (rows, cols):
        raise ValueError(
            f"mask {path.name} is {mask.shape[1]}x{mask.shape[0]}, image is {cols}x{rows}"
        )
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError(f"mask {path.name} is empty (no non-zero pixel)")
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def _write_report(path: Path, issues: list[IngestIssue]) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        for issue in issues:
            row = asdict(issue)
            writer.writerow(
                {k: escape_cell(v) if isinstance(v, str) else v for k, v in row.items()}
            )
    os.replace(tmp, path)


def _read_row(data_dir: Path, row: ManifestRow, make_crop, marks: StoredMarks):
    """One manifest row -> (source, image, box, crop, warning, mark version), or the reason it is
    skipped. A row without box or mask takes its box from the stored marks of its slice; with none
    stored, box and crop are None (the image is registered for annotation, not cropped)."""
    source = contained(data_dir, row.path)
    if source is None:
        return f"{row.path} leads outside the data folder through a symbolic link; not read"
    if not source.is_file():
        return f"file not found: {source}"
    try:
        image = read_pixels(source, row.frame)
    except DicomReadError as exc:
        return exc.reason
    if image.modality != "MR":
        return f"Modality is {image.modality or 'missing'!r}, expected MR (only MRI is ingested)"
    box, version = row.box, None
    if box is None and row.mask is None:
        refusal = marks.refusal(row.patient_id)
        if refusal:
            return refusal
        stored = marks.by_slice.get((row.patient_id, image.sop_instance_uid, row.frame))
        if stored is None:
            return source, image, None, None, None, None
        version, author, shapes = stored
        try:
            box = crop_box(list(shapes), image.rows, image.cols)
        except MarkError as exc:
            return f"lesion mark version {version} by {author} unusable: {exc}"
    elif box is None:
        mask = contained(data_dir, row.mask)
        if mask is None:
            return f"lesion mask {row.mask} leads outside the data folder through a symbolic link; not read"
        try:
            box = _mask_box(mask, image.rows, image.cols)
        except (OSError, ValueError, DicomReadError) as exc:
            return f"lesion mask {row.mask} unusable: {exc}"
    if not box_inside(box, image.rows, image.cols):
        text = ",".join(f"{v:g}" for v in box)
        return f"ROI {text} lies outside the {image.cols}x{image.rows} image"
    warning = looks_t2_sagittal(image.series_description, image.orientation_label)
    return source, image, box, make_crop(image.array, box), warning, version


def _duplicate_of(first_seen: dict[str, ManifestRow], row: ManifestRow, image) -> str | None:
    """Why ``row`` is refused when another patient has an image with exactly its pixels.

    In a real cohort that is one patient filed under two IDs: both would land in different folds,
    and the model would be tested on an image it trained on.
    """
    digest = hashlib.sha256(image.array.tobytes()).hexdigest()
    first = first_seen.setdefault(digest, row)
    if first.patient_id == row.patient_id:
        return None
    return (
        f"same pixels as {first.path} (row {first.row}) of patient {first.patient_id}: patients "
        f"{first.patient_id} and {row.patient_id} may be one person filed twice, which would "
        "leak across folds; fix the manifest"
    )


def _case_record(row: ManifestRow, image) -> dict:
    return {
        "case_id": row.patient_id,
        "label": row.label_name,
        "synthetic": image.synthetic,
        "series_description": image.series_description,
        "orientation": image.orientation_label,
        "ingestion_id": None,
        "site": row.site,
    }


def _image_record(row: ManifestRow, image, source: Path, box, crop_index: int | None) -> dict:
    box = box if box is not None else (None, None, None, None)
    return {
        "image_id": f"{row.patient_id}:{row.path}#{row.frame}",
        "case_id": row.patient_id,
        "source_path": str(source),
        "frame": row.frame,
        "roi_x0": box[0],
        "roi_y0": box[1],
        "roi_x1": box[2],
        "roi_y1": box[3],
        "crop_cache": None,
        "crop_index": crop_index,
        "rows": image.rows,
        "cols": image.cols,
    }


UNMARKED = (
    "no lesion box, mask or stored mark: registered for annotation (Annotate lesions page), "
    "not cropped"
)


def _ingest_rows(data_dir, rows, crop_size, margin, progress, marks):
    """Read, check and crop each row. Returns crops, issues, case and image dicts, and the mark
    version each crop cut from stored marks came from."""
    crops, labels, issues, cases, images, versions = [], [], [], {}, [], {}
    make_crop = lesion_crop(crop_size=crop_size, margin=margin)
    first_seen: dict[str, ManifestRow] = {}
    for row in tqdm(rows, desc="ingest", unit="file", disable=not progress, leave=False):
        # pydicom's warnings go to the report (and the log), not through the progress bar
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            read = _read_row(data_dir, row, make_crop, marks)
        for text in dict.fromkeys(str(w.message) for w in caught):
            log.warning("row %s (%s): %s", row.row, row.path, text)
            issues.append(IngestIssue(row.row, row.path, f"pydicom: {text}", level="warning"))
        if not isinstance(read, str):
            read = _duplicate_of(first_seen, row, read[1]) or read
        if isinstance(read, str):
            issues.append(IngestIssue(row.row, row.path, read))
            continue
        source, image, box, crop, warning, version = read
        if warning:
            issues.append(IngestIssue(row.row, row.path, warning, level="warning"))
        cases.setdefault(row.patient_id, _case_record(row, image))
        if crop is None:
            issues.append(IngestIssue(row.row, row.path, UNMARKED, level="warning"))
            images.append(_image_record(row, image, source, None, None))
            continue
        images.append(_image_record(row, image, source, box, len(crops)))
        if version is not None:
            versions[images[-1]["image_id"]] = version
        crops.append(crop)
        labels.append(row.label)
    cropped = [i for i in images if i["crop_index"] is not None]
    crop_set = CropSet(
        crops=np.stack(crops).astype(np.float32)
        if crops
        else np.zeros((0, crop_size, crop_size), np.float32),
        image_ids=np.asarray([i["image_id"] for i in cropped], dtype=str),
        case_ids=np.asarray([i["case_id"] for i in cropped], dtype=str),
        labels=np.asarray(labels, dtype=np.int64),
        mark_versions=np.asarray([versions.get(i["image_id"], 0) for i in cropped], np.int64)
        if versions
        else None,
    )
    return crop_set, issues, list(cases.values()), images, versions


def ingest_folder(
    data_dir: str | Path,
    manifest: str | Path | None = None,
    *,
    crop_size: int = 100,
    margin: float = 0.1,
    conn=None,
    progress: bool = True,
    report_csv: str | Path | None = None,
    use_cache: bool = True,
    cache_dir: str | Path | None = None,
    cohort: str = "internal",
    allow_label_change: bool = False,
    marks_by: str | None = None,
) -> IngestResult:
    """Ingest every image a manifest lists into lesion crops.

    Parameters
    ----------
    data_dir : str or Path
        Folder of DICOM files; manifest paths are relative to it.
    manifest : str or Path, optional
        The manifest CSV (see `core.data.manifest`); default ``<data_dir>/manifest.csv``.
    crop_size : int, default 100
        Side of the square crops, in pixels (100 as in the paper).
    margin : float, default 0.1
        Context kept around the (squared) lesion box, as a fraction of its side on each side.
    conn : sqlite_utils.Database, optional
        From ``db.connect()``: the ingestion, its issues, cases and images are recorded there.
    progress, use_cache : bool, default True
        Show a tqdm progress bar over the files; reuse crops cached for identical inputs.
    report_csv : str or Path, optional
        Also copy the report (``row, path, level, problem``) here.
    cache_dir : str or Path, optional
        Crop cache; default ``core.project.home.cache_dir("crops")``, never the data folder.
    cohort : str, default "internal"
        The cohort of every case (sites come from the manifest); a case is keyed
        ``db.case_key(cohort, patient_id)``, so another cohort's cases are never changed.
    allow_label_change : bool, default False
        Let this ingestion change stored labels (audited); else it is refused, recording nothing.
    marks_by : str, optional
        Whose stored marks (read from ``conn``) give the box of a row without box or mask: an
        annotator's name or ``admin``; default the cohort's chosen author, else the only one.

    Returns
    -------
    IngestResult
        Crops, issues, report path, case and image records, mark versions used.

    Raises
    ------
    FileNotFoundError
        If ``data_dir`` or the manifest does not exist.
    ValueError
        If the manifest lacks required columns, or crop parameters are out of range.
    db.LabelChangeRefused
        If ``conn`` holds some of these cases with another label.
    """
    data_dir, manifest, crop_size = _checked_inputs(data_dir, manifest, crop_size, margin)
    cohort = db.check_cohort(cohort)
    rows, manifest_issues = read_manifest(manifest)
    marks = stored_marks(conn, cohort, marks_by) if conn is not None else StoredMarks()
    cache = _CacheFiles.for_key(
        Path(cache_dir) if cache_dir else home.cache_dir("crops"),
        _cache_key(data_dir, manifest, rows, crop_size, margin, marks),
    )
    from_cache = use_cache and cache.complete()
    crops, issues, cases, images, versions = _load_or_ingest(
        cache, from_cache, data_dir, rows, manifest_issues, (crop_size, margin, progress, marks)
    )
    crops, cases, images = _in_cohort(cohort, crops, cases, images)
    result = IngestResult(
        crops, issues, _report_copy(cache.report, report_csv), cases, images, cache.npz,
        cache_key=cache.key, from_cache=from_cache,
        n_rows=len(rows) + sum(1 for i in manifest_issues if i.row),
        mark_versions={f"{cohort}/{i}": v for i, v in versions.items()},
    )  # fmt: skip
    if conn is not None:
        _record(conn, result, (data_dir, manifest, crop_size, margin), allow_label_change)
    return result


def _in_cohort(cohort: str, crops: CropSet, cases: list[dict], images: list[dict]):
    """The patient-level records (as cached, the same for every cohort) keyed in ``cohort``.

    A case becomes ``db.case_key(cohort, patient_id)`` and each image id starts with it.
    """
    key = {c["case_id"]: db.case_key(cohort, c["case_id"]) for c in cases}
    scoped_cases = [
        {"site": None, **c, "case_id": key[c["case_id"]], "patient_id": c["case_id"],
         "cohort": cohort}
        for c in cases
    ]  # fmt: skip
    prefix = f"{cohort}/"
    scoped_images = [
        {**i, "image_id": prefix + i["image_id"], "case_id": key[i["case_id"]]} for i in images
    ]
    scoped = CropSet(
        crops=crops.crops,
        image_ids=np.asarray([prefix + i for i in crops.image_ids.tolist()], dtype=str),
        case_ids=np.asarray([key[c] for c in crops.case_ids.tolist()], dtype=str),
        labels=crops.labels,
        mark_versions=crops.mark_versions,
    )
    return scoped, scoped_cases, scoped_images


def _report_copy(report: Path, report_csv) -> Path:
    """The report, copied to ``report_csv`` when asked (and that is another file)."""
    if report_csv is None or Path(report_csv).resolve() == report.resolve():
        return report
    shutil.copyfile(report, report_csv)
    return Path(report_csv)


def _load_or_ingest(cache, from_cache: bool, data_dir, rows, manifest_issues, options):
    """The cached crops and records when ``from_cache``, else those of a fresh ingestion."""
    if from_cache:
        return cache.load()
    return _ingest_and_cache(cache, data_dir, rows, manifest_issues, options)


def _ingest_and_cache(cache, data_dir, rows, manifest_issues, options):
    """Ingest the rows afresh (``options`` = crop size, margin, progress) and cache the result."""
    crops, row_issues, cases, images, versions = _ingest_rows(data_dir, rows, *options)
    issues = sorted(manifest_issues + row_issues, key=lambda i: (i.row, i.level))
    cache.save(crops, issues, cases, images, versions)
    return crops, issues, cases, images, versions


def _checked_inputs(data_dir, manifest, crop_size, margin) -> tuple[Path, Path, int]:
    data_dir = Path(data_dir).resolve()
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data folder not found: {data_dir}")
    manifest = Path(manifest).resolve() if manifest else data_dir / "manifest.csv"
    if int(crop_size) != crop_size or not 8 <= crop_size <= MAX_CROP_SIZE:
        raise ValueError(
            f"crop_size must be a whole number of pixels from 8 to {MAX_CROP_SIZE}, got {crop_size!r}"
        )
    if not 0 <= margin <= 2:
        raise ValueError(f"margin must lie in 0..2 (fraction of the box side), got {margin!r}")
    return data_dir, manifest, int(crop_size)


@dataclass(frozen=True)
class _CacheFiles:
    """The cached crops, records and report of one ingestion input (content-hashed key)."""

    key: str
    npz: Path
    meta: Path
    report: Path

    @classmethod
    def for_key(cls, folder: Path, key: str) -> _CacheFiles:
        folder.mkdir(parents=True, exist_ok=True)
        return cls(
            key,
            folder / f"crops-{key}.npz",
            folder / f"crops-{key}.json",
            folder / f"report-{key}.csv",
        )

    def complete(self) -> bool:
        return self.npz.is_file() and self.meta.is_file() and self.report.is_file()

    def load(self):
        meta = json.loads(self.meta.read_text())
        issues = [IngestIssue(**i) for i in meta["issues"]]
        versions = meta.get("mark_versions", {})
        return CropSet.load(self.npz), issues, meta["cases"], meta["images"], versions

    def save(self, crops: CropSet, issues, cases, images, versions) -> None:
        for image in images:
            image["crop_cache"] = str(self.npz) if image["crop_index"] is not None else None
        tmp = self.npz.with_name(f"{self.npz.stem}.tmp{os.getpid()}.npz")
        crops.save(tmp)
        os.replace(tmp, self.npz)
        _write_report(self.report, issues)
        meta = {"issues": [asdict(i) for i in issues], "cases": cases, "images": images,
                "mark_versions": versions}  # fmt: skip
        tmp = self.meta.with_name(self.meta.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self.meta)


def _record(conn, result: IngestResult, inputs: tuple, allow_label_change: bool) -> None:
    """Store the ingestion, its issues, cases and images through the db layer; refuse first,
    recording nothing, when it would change stored labels without ``allow_label_change``."""
    changes = db.label_changes(conn, result.cases)
    if changes and not allow_label_change:
        raise db.LabelChangeRefused(changes)
    data_dir, manifest, crop_size, margin = inputs
    issues = [
        {
            "row": i.row,
            "path": i.path,
            "problem": i.problem if i.level == "error" else f"{i.level}: {i.problem}",
        }
        for i in result.issues
    ]
    ingestion_id = db.record_ingestion(
        conn,
        data_dir=str(data_dir),
        manifest=str(manifest),
        crop_cache=str(result.crop_cache),
        data_hash=result.crops.data_hash(),
        crop_size=crop_size,
        margin=margin,
        issues=issues,
    )
    for case in result.cases:
        case["ingestion_id"] = ingestion_id
    result.ingestion_id = ingestion_id
    db.upsert_cases(conn, result.cases, allow_label_change=allow_label_change)
    db.upsert_images(conn, result.images)
    db.record_ingestion_marks(conn, ingestion_id, sorted(result.mark_versions.items()))
