"""Bad input through `core.data.ingest.ingest_folder`: hundreds of malformed DICOM files and manifest rows
in one batch, plus whole-manifest problems.

The DICOM files are mutated (seeded) from the demo cohort (JPEG-LS, 128x128) and from pydicom's own
test files shipped in the wheel (native little/big endian, implicit VR, RLE, JPEG 2000, JPEG-LS,
a CT, a truncated MR, an RT plan without pixels). Every manifest row must end up either ingested
or as one clear error line naming its row and path; nothing may raise; and the clean files in the
same batch must give exactly the crops a clean batch of only them gives.
"""

from __future__ import annotations

import csv
import re
import shutil
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from core.data.ingest import ingest_folder
from db.spreadsheet import unescape_cell

SEED = 20261125
BOX_HEADER = ("patient_id", "path", "label", "x0", "y0", "x1", "y1", "frame")
# pydicom test files (all shipped in the wheel, no download) and a lesion box inside each.
PYDICOM_FILES = {
    "MR_small.dcm": (10, 10, 50, 50),
    "MR_small_RLE.dcm": (10, 10, 50, 50),
    "MR_small_jp2klossless.dcm": (10, 10, 50, 50),
    "MR_small_bigendian.dcm": (10, 10, 50, 50),
    "MR_small_implicit.dcm": (10, 10, 50, 50),
    "MR_small_jpeg_ls_lossless.dcm": (10, 10, 50, 50),
    "JPEG2000.dcm": (20, 20, 200, 200),
    "CT_small.dcm": (20, 20, 100, 100),
    "MR_truncated.dcm": (10, 10, 50, 50),
    "rtplan.dcm": (10, 10, 50, 50),
}
# Regexes that an error for each kind of damage must match: the message names what is wrong.
DECODE = (
    r"could not be decoded|unreadable DICOM header|damaged DICOM header|not a DICOM file"
    r"|no pixel data|truncated file"
)
UNREADABLE = DECODE + r"|expected one greyscale frame|PhotometricInterpretation|Modality"


@dataclass
class Case:
    """One manifest row of the batch: what is written and what ingestion must say about it."""

    path: str
    box: tuple
    # "ok": ingested. "error:<regex>": one error matching regex. "same:<regex>": that error, or
    # (a decoder may recover, e.g. libjpeg reads JPEG-LS whatever the syntax claims) ingested with
    # exactly the crop of the undamaged source. "any": an error or ingested, never a crash.
    expect: str
    label: str = "SCC"
    frame: str = "0"
    patient: str = ""
    source: str = ""  # the undamaged file this one was made from


# ---- DICOM mutations: each takes the file's bytes and a Generator, returns bytes or None ----


def _dataset(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(BytesIO(data))


def _save(ds: pydicom.Dataset) -> bytes:
    out = BytesIO()
    ds.save_as(out, enforce_file_format=False)
    return out.getvalue()


def _edit(**changes):
    """A mutation that sets (value) or deletes (None) header elements."""

    def mutate(data: bytes, rng) -> bytes:
        ds = _dataset(data)
        for keyword, value in changes.items():
            if value is None:
                if keyword in ds:
                    delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        return _save(ds)

    return mutate


def truncate(data: bytes, rng) -> bytes:
    return data[: int(rng.integers(1, len(data) - 16))]


def truncate_header(data: bytes, rng) -> bytes:
    return data[: int(rng.integers(132, 600))]


def flip_header_bits(data: bytes, rng) -> bytes:
    buf = bytearray(data)
    end = max(200, data.rfind(b"\xe0\x7f\x10\x00"))  # up to the PixelData tag
    for pos in rng.integers(128, end, size=int(rng.integers(1, 12))):
        buf[pos] ^= 1 << int(rng.integers(0, 8))
    return bytes(buf)


def flip_any_bytes(data: bytes, rng) -> bytes:
    buf = bytearray(data)
    for pos in rng.integers(0, len(data), size=int(rng.integers(1, 40))):
        buf[pos] = int(rng.integers(0, 256))
    return bytes(buf)


def garbage_span(data: bytes, rng) -> bytes:
    start = int(rng.integers(132, len(data) - 64))
    size = int(rng.integers(8, 64))
    return data[:start] + rng.bytes(size) + data[start + size :]


def bad_magic(data: bytes, rng) -> bytes:
    return data[:128] + b"DIKM" + data[132:]


def empty_file(data: bytes, rng) -> bytes:
    return b""


def not_dicom(data: bytes, rng) -> bytes:
    return b"patient_id,path\nthis is a CSV saved with a .dcm name\n" * 20


def _replace_once(data: bytes, old: bytes, new: bytes) -> bytes | None:
    at = data.find(old)
    return None if at < 0 else data[:at] + new + data[at + len(old) :]


def syntax_lie(data: bytes, rng) -> bytes | None:
    """Swap the transfer syntax UID for another of the same byte length, so the file stays
    parseable but the pixel data no longer matches the syntax it claims."""
    swaps = {
        b"1.2.840.10008.1.2.4.80": b"1.2.840.10008.1.2.4.50",  # JPEG-LS -> "JPEG baseline"
        b"1.2.840.10008.1.2.4.90": b"1.2.840.10008.1.2.4.80",  # JPEG 2000 -> "JPEG-LS"
        b"1.2.840.10008.1.2.1\x00": b"1.2.840.10008.1.2.5\x00",  # native -> "RLE"
        b"1.2.840.10008.1.2.5\x00": b"1.2.840.10008.1.2.1\x00",  # RLE -> "native"
    }
    for old, new in swaps.items():
        out = _replace_once(data, old, new)
        if out is not None:
            return out
    return None


def rows_length_lie(data: bytes, rng) -> bytes | None:
    """Explicit VR: Rows (0028,0010) US claims 4 bytes instead of 2."""
    return _replace_once(data, b"\x28\x00\x10\x00US\x02\x00", b"\x28\x00\x10\x00US\x04\x00")


def pixel_length_lie(data: bytes, rng) -> bytes | None:
    """Explicit VR: PixelData (7FE0,0010) claims a length other than what follows."""
    for vr in (b"OW", b"OB"):
        tag = b"\xe0\x7f\x10\x00" + vr + b"\x00\x00"
        at = data.rfind(tag)
        if at >= 0:
            wrong = int(rng.choice([3, 7, len(data), 2**31]))
            return data[: at + 8] + wrong.to_bytes(4, "little") + data[at + 12 :]
    return None


# name -> (mutation, expectation); "any" where a mutation may leave a valid file.
MUTATIONS = {
    "modality_ct": (_edit(Modality="CT"), "error:Modality is 'CT', expected MR"),
    "modality_missing": (_edit(Modality=None), "error:Modality is 'missing'"),
    "rows_missing": (_edit(Rows=None), "error:(?s)could not be decoded.*Rows"),
    "columns_missing": (_edit(Columns=None), "error:(?s)could not be decoded.*Columns"),
    "bits_allocated_3": (_edit(BitsAllocated=3), "same:could not be decoded"),
    "bits_allocated_64": (_edit(BitsAllocated=64), "same:could not be decoded"),
    "bits_stored_40": (_edit(BitsStored=40), "same:could not be decoded"),
    "pixel_data_removed": (_edit(PixelData=None), "error:no pixel data"),
    "photometric_rgb": (_edit(PhotometricInterpretation="RGB"), "error:PhotometricInterpretation"),
    "samples_3": (_edit(SamplesPerPixel=3), "error:" + UNREADABLE),
    "syntax_lie": (syntax_lie, "same:" + DECODE),
    "rows_length_lie": (rows_length_lie, "error:" + UNREADABLE),
    "pixel_length_lie": (pixel_length_lie, "same:" + DECODE),
    "truncate": (truncate, "same:" + DECODE),
    "truncate_header": (truncate_header, "error:" + DECODE),
    "bad_magic": (bad_magic, "error:not a DICOM file"),
    "empty_file": (empty_file, "error:not a DICOM file|unreadable"),
    "not_dicom": (not_dicom, "error:not a DICOM file"),
    "flip_header_bits": (flip_header_bits, "any"),
    "flip_any_bytes": (flip_any_bytes, "any"),
    "garbage_span": (garbage_span, "any"),
}
REPEATS = {"truncate": 4, "flip_header_bits": 3, "flip_any_bytes": 3, "garbage_span": 3}

# ---- manifest rows that are wrong in themselves (they point at a valid file) ----
ROW_FAULTS = [
    # (box or None, label, frame, expected-problem regex)
    (("a", "b", "c", "d"), "SCC", "0", r"lesion box a,b,c,d needs four numbers"),
    (("10", "", "50", "50"), "SCC", "0", r"lesion box 10,,50,50 needs four numbers"),
    ((-5, -5, 40, 40), "SCC", "0", r"ROI -5,-5,40,40 lies outside the \d+x\d+ image"),
    ((10, 10, 300, 300), "SCC", "0", r"ROI 10,10,300,300 lies outside the \d+x\d+ image"),
    ((50, 50, 10, 10), "SCC", "0", r"lesion box 50,50,10,10 is empty: need x1 > x0"),
    ((10, 50, 50, 10), "AC", "0", r"is empty: need x1 > x0 and y1 > y0"),
    ((10, 10, 50, 50), "Adeno", "0", r"unknown label 'Adeno': expected one of SCC, AC, ASC"),
    ((10, 10, 50, 50), "", "0", r"unknown label '': expected one of SCC, AC, ASC"),
    ((10, 10, 50, 50), "SCC", "1.5", r"frame '1.5' is not a whole number >= 0"),
    ((10, 10, 50, 50), "SCC", "-1", r"frame '-1' is not a whole number >= 0"),
    ((10, 10, 50, 50), "SCC", "2", r"frame 2 out of range; the file has 1 frame"),
]


def _demo_sources(cohort: Path) -> list[tuple[str, tuple]]:
    """(relative path, box) of the demo cohort's files, in manifest order."""
    with (cohort / "manifest.csv").open(encoding="utf-8") as fh:
        return [
            (rec["path"], tuple(float(rec[c]) for c in ("x0", "y0", "x1", "y1")))
            for rec in csv.DictReader(fh)
        ]


def _write_manifest(path: Path, cases: list[Case]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(BOX_HEADER)
        for i, case in enumerate(cases):
            box = [f"{v:g}" if isinstance(v, int | float) else v for v in case.box]
            writer.writerow([case.patient or f"F{i:04d}", case.path, case.label, *box, case.frame])


def build_batch(folder: Path, cohort: Path) -> tuple[list[Case], list[Case]]:
    """Write valid, mutated and mis-described files plus their manifest into ``folder``.

    Returns all cases (manifest order) and the valid ones.
    """
    rng = np.random.default_rng(SEED)
    demo = _demo_sources(cohort)
    sources: list[tuple[str, bytes, tuple]] = [
        (f"demo{i}", (cohort / rel).read_bytes(), box) for i, (rel, box) in enumerate(demo[:6])
    ]
    for name in ("MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
                 "MR_small_bigendian.dcm", "MR_small_implicit.dcm",
                 "MR_small_jpeg_ls_lossless.dcm"):  # fmt: skip
        path = get_testdata_file(name, download=False)
        sources.append((Path(name).stem, Path(path).read_bytes(), PYDICOM_FILES[name]))

    (folder / "clean").mkdir(parents=True)
    (folder / "bad").mkdir()
    valid: list[Case] = []
    # The MR_small files are one image in six encodings, so one patient: ingestion refuses the
    # same pixels filed under two patients. A damaged copy belongs to its source's patient.
    patient = {
        stem: "V-MR_small" if stem.startswith("MR_small") else f"V-{stem}" for stem, *_ in sources
    }
    for stem, data, box in sources:
        (folder / "clean" / f"{stem}.dcm").write_bytes(data)
        valid.append(Case(f"clean/{stem}.dcm", box, "ok", label="SCC", patient=patient[stem]))
    for name in ("CT_small.dcm", "JPEG2000.dcm", "MR_truncated.dcm", "rtplan.dcm"):
        shutil.copyfile(get_testdata_file(name, download=False), folder / "bad" / name)
    cases = list(valid)
    cases += [
        Case("bad/CT_small.dcm", PYDICOM_FILES["CT_small.dcm"], "error:Modality is 'CT'"),
        Case("bad/JPEG2000.dcm", PYDICOM_FILES["JPEG2000.dcm"], "error:Modality is 'NM'"),
        Case("bad/MR_truncated.dcm", PYDICOM_FILES["MR_truncated.dcm"], "error:" + DECODE),
        Case("bad/rtplan.dcm", PYDICOM_FILES["rtplan.dcm"], "error:no pixel data"),
        Case("bad/missing.dcm", (10, 10, 50, 50), "error:file not found"),
    ]
    for name, (mutate, expect) in MUTATIONS.items():
        for stem, data, box in sources:
            for k in range(REPEATS.get(name, 1)):
                mutated = mutate(data, rng)
                if mutated is None:  # the mutation does not apply to this encoding
                    continue
                rel = f"bad/{stem}-{name}-{k}.dcm"
                (folder / rel).write_bytes(mutated)
                cases.append(
                    Case(rel, box, expect, patient=patient[stem], source=f"clean/{stem}.dcm")
                )
    # A valid file described wrongly: the row is at fault, not the file. One copy per row, so
    # that no row is merely a duplicate of another.
    (folder / "rows").mkdir()
    for k, (box, label, frame, pattern) in enumerate(ROW_FAULTS):
        shutil.copyfile(folder / valid[0].path, folder / "rows" / f"{k}.dcm")
        cases.append(Case(f"rows/{k}.dcm", box, f"error:{pattern}", label=label, frame=frame))
    rng.shuffle(cases)  # valid and broken rows interleaved, as in a real folder
    # These rows contradict an earlier row, so they come after all the valid ones.
    cases += [
        Case(valid[1].path, valid[1].box, r"error:duplicate row: clean/\S+ frame 0 is already "
             r"listed in row \d+", patient=valid[1].patient),
        Case(valid[2].path, valid[2].box, r"error:patient V-\S+ is labelled AC here but SCC in "
             r"row \d+; a patient has one label", label="AC", frame="1", patient=valid[2].patient),
        Case("", (10, 10, 50, 50), "error:path is empty"),
        Case(valid[3].path, valid[3].box, "error:patient_id is empty", patient=" "),
    ]  # fmt: skip
    _write_manifest(folder / "manifest.csv", cases)
    return cases, valid


@pytest.fixture(scope="module")
def batch(small_cohort_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    cases, valid = build_batch(folder, small_cohort_dir)
    result = ingest_folder(folder, progress=False, use_cache=False)  # must not raise
    return folder, cases, valid, result


def test_batch_has_at_least_200_malformed_dicom_files(batch):
    folder, cases, _, _ = batch
    damaged = {c.path for c in cases if c.path.startswith("bad/") and (folder / c.path).is_file()}
    assert len(damaged) >= 200


def test_every_row_is_either_ingested_or_one_clear_error(batch):
    folder, cases, _, result = batch
    crops = {
        Path(img["source_path"]): result.crops.crops[img["crop_index"]]
        for img in result.images
        if img["crop_index"] is not None
    }
    errors: dict[int, list] = {}
    for issue in result.errors:
        errors.setdefault(issue.row, []).append(issue)
    surprises = []
    for line, case in enumerate(cases, start=2):  # the header is line 1
        got = errors.get(line, [])
        assert len(got) <= 1, f"row {line} has {len(got)} errors: {got}"
        crop = None if got or not case.path else crops.get((folder / case.path).resolve())
        if got:
            issue = got[0]
            assert issue.path == (case.path or "-"), issue
            text = str(issue)
            assert text.startswith(f"error: row {line} ({issue.path}): "), text
            assert issue.problem.strip() and len(issue.problem) < 600, issue.problem
            assert not re.search(r"Traceback|object at 0x|^\w+Error$", issue.problem), text
        elif crop is None:
            surprises.append(f"row {line} {case.path}: neither ingested nor reported")
            continue
        kind, _, pattern = case.expect.partition(":")
        if kind == "ok" and got:
            surprises.append(f"row {line} {case.path}: expected ingested, got {got[0].problem}")
        elif kind in ("error", "same") and got and not re.search(pattern, got[0].problem):
            surprises.append(f"row {line} {case.path}: {got[0].problem!r} !~ {pattern}")
        elif kind == "error" and not got:
            surprises.append(f"row {line} {case.path}: expected an error, it was ingested")
        elif kind == "same" and not got:
            clean = crops[(folder / case.source).resolve()]
            if not np.array_equal(crop, clean):
                surprises.append(f"row {line} {case.path}: ingested with a different crop")
    assert surprises == [], "\n".join(surprises)


def test_report_csv_lists_every_error_with_row_path_problem(batch):
    _, _, _, result = batch
    with result.report_csv.open(encoding="utf-8") as fh:
        rows = [
            (int(r["row"]), unescape_cell(r["path"]), r["level"], unescape_cell(r["problem"]))
            for r in csv.DictReader(fh)
        ]  # cells a spreadsheet would run as formulas are quoted (db.spreadsheet)
    assert rows == [(i.row, i.path, i.level, i.problem) for i in result.issues]
    assert len(result.errors) >= 200


def test_valid_files_in_the_broken_batch_give_the_crops_of_a_clean_batch(batch, tmp_path):
    folder, _, valid, result = batch
    clean = tmp_path / "clean_only"
    shutil.copytree(folder / "clean", clean / "clean")
    _write_manifest(clean / "manifest.csv", valid)
    reference = ingest_folder(clean, progress=False, use_cache=False)
    assert reference.errors == []
    ours = dict(zip(result.crops.image_ids, result.crops.crops, strict=True))
    theirs = dict(zip(reference.crops.image_ids, reference.crops.crops, strict=True))
    assert sorted(theirs) == sorted(f"internal/{c.patient}:{c.path}#0" for c in valid)
    assert set(theirs) <= set(ours)
    for image_id, crop in theirs.items():
        np.testing.assert_array_equal(ours[image_id], crop, err_msg=image_id)


def test_element_with_unknown_vr_is_a_read_error_naming_the_tag(tmp_path):
    """pydicom converts elements lazily, so a damaged one used to raise NotImplementedError out of
    ingestion when read_pixels first touched it (found by the bit-flip fuzzing above)."""
    from core.data.dicom_io import DicomReadError, read_pixels

    data = Path(get_testdata_file("MR_small.dcm", download=False)).read_bytes()
    bad = _replace_once(data, b"\x08\x00\x60\x00CS", b"\x08\x00\x60\x00LU")  # Modality
    assert bad is not None
    path = tmp_path / "bad_vr.dcm"
    path.write_bytes(bad)
    with pytest.raises(DicomReadError, match=r"damaged DICOM header .*'LU'.*\(0008,0060\)"):
        read_pixels(path)


def test_rust_decoder_panic_is_a_read_error(tmp_path):
    """One changed byte inside an RLE segment made pylibjpeg-rle panic; pyo3's PanicException is a
    BaseException, so it escaped ingestion (found by the byte-flip fuzzing above)."""
    from core.data.dicom_io import DicomReadError, read_pixels

    data = bytearray(Path(get_testdata_file("MR_small_RLE.dcm", download=False)).read_bytes())
    if data[2610] != 250:
        pytest.skip("pydicom's MR_small_RLE.dcm differs from the one this byte was found in")
    data[2610] = 217
    path = tmp_path / "rle_panic.dcm"
    path.write_bytes(bytes(data))
    with pytest.raises(DicomReadError, match=r"pixel data could not be decoded \(RLE Lossless\)"):
        read_pixels(path)


# ---- whole-manifest problems: nothing can be ingested, so ingest_folder raises one clear
# ValueError (its documented contract; the CLI prints it as "cervixscope ingest: error: ...") ----
GOOD_ROWS = "patient_id,path,label,x0,y0,x1,y1\nP1,clean/MR_small.dcm,SCC,10,10,50,50\n"
WHOLE_FILE_FAULTS = {
    "empty file": (b"", r"is empty; it needs a header row with patient_id, path, label"),
    "blank lines only": (b"\n\n", r"is empty; it needs a header row"),
    "missing columns": (
        b"id,file,label\nP1,clean/MR_small.dcm,SCC\n",
        r"has columns id, file, label; it needs patient_id, path, label, and optionally x0,y0",
    ),
    "semicolons": (
        GOOD_ROWS.replace(",", ";").encode(),
        r"looks separated by ';', not commas \(header 'patient_id;path;label",
    ),
    "tabs": (GOOD_ROWS.replace(",", "\t").encode(), r"looks separated by '\\t', not commas"),
    "latin-1": (
        GOOD_ROWS.replace("P1", "Pé").encode("latin-1"),
        r"is not UTF-8 text: byte 0xe9 on line 2 is not valid UTF-8; save it as UTF-8 CSV",
    ),
    "utf-16": (GOOD_ROWS.encode("utf-16"), r"is UTF-16 text; save it as UTF-8 CSV"),
}


@pytest.fixture
def mr_small_folder(tmp_path):
    (tmp_path / "clean").mkdir()
    shutil.copyfile(
        get_testdata_file("MR_small.dcm", download=False), tmp_path / "clean" / "MR_small.dcm"
    )
    (tmp_path / "manifest.csv").write_text(GOOD_ROWS, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("content, message", WHOLE_FILE_FAULTS.values(), ids=WHOLE_FILE_FAULTS)
def test_unusable_manifest_is_one_clear_value_error(mr_small_folder, content, message):
    manifest = mr_small_folder / "manifest.csv"
    manifest.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        ingest_folder(mr_small_folder, progress=False, use_cache=False)
    assert str(manifest) in str(info.value)  # names the file
    assert type(info.value) is ValueError  # not a bare UnicodeDecodeError or csv.Error


def test_manifest_with_bom_and_crlf_ingests_like_a_plain_one(mr_small_folder):
    plain = ingest_folder(mr_small_folder, progress=False, use_cache=False)
    (mr_small_folder / "manifest.csv").write_bytes(
        b"\xef\xbb\xbf" + GOOD_ROWS.replace("\n", "\r\n").encode()
    )
    with_bom = ingest_folder(mr_small_folder, progress=False, use_cache=False)
    assert with_bom.errors == [] and list(with_bom.crops.image_ids) == ["internal/P1:clean/MR_small.dcm#0"]
    np.testing.assert_array_equal(with_bom.crops.crops, plain.crops.crops)
