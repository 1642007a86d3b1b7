"""Lesion masks in DICOM's and neuroimaging's own formats: DICOM SEG in and out (highdicom), NIfTI
in (nibabel).

A SEG is matched to the case's slices by the SOP Instance UIDs its frames reference; a SEG without
usable references, and every NIfTI, by geometry: each slice's pixel centres (from its
ImagePositionPatient, ImageOrientationPatient and PixelSpacing) must land on voxel centres of the
mask within ``GEOMETRY_TOLERANCE`` voxels. All segments of a SEG together are the lesion.
Nothing is stored unless the whole file matched and every mask is usable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.annotation.marks import CaseSlice, save_imported
from core.data.dicom_io import person_name, with_type2_attributes
from core.data.mark_geometry import Mark, MarkError, mark_mask

GEOMETRY_TOLERANCE = 0.05  # voxels: a slice is "the same" when every pixel centre is this close


class MaskImportError(ValueError):
    """A mask file that cannot be imported; the message names the file and what is wrong."""


def _headers(slices: list[CaseSlice]):
    import pydicom

    return [pydicom.dcmread(s.source.path, stop_before_pixels=True, force=True) for s in slices]


def _pixel_centres_lps(ds, rows: int, cols: int) -> np.ndarray:
    """World (LPS, mm) positions of a slice's pixel centres, shape (rows, cols, 3)."""
    ipp = np.asarray([float(v) for v in ds.ImagePositionPatient])
    iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
    row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
    r, c = np.mgrid[0:rows, 0:cols]
    return ipp + c[..., None] * col_mm * iop[:3] + r[..., None] * row_mm * iop[3:]


def _has_geometry(ds) -> bool:
    return all(k in ds for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"))


def import_nifti(conn, path, case_id: str, slices: list[CaseSlice], author: str) -> int:
    """Import a NIfTI mask (non-zero voxels are the lesion) onto the case's slices by geometry;
    return the stored version. :class:`MaskImportError` when no slice matches."""
    import nibabel

    path = Path(path)
    try:
        image = nibabel.load(str(path))
        volume = np.asanyarray(image.dataobj)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for a bad file
        raise MaskImportError(f"{path.name}: not a readable NIfTI file ({exc})") from None
    if volume.ndim == 4 and volume.shape[3] == 1:
        volume = volume[..., 0]
    if volume.ndim != 3:
        raise MaskImportError(
            f"{path.name}: a mask volume has 3 dimensions, this has {volume.ndim}"
        )
    to_voxel = np.linalg.inv(image.affine)
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    masks = {}
    for index, (piece, ds) in enumerate(zip(slices, _headers(slices), strict=True)):
        if not _has_geometry(ds):
            continue
        ras = _pixel_centres_lps(ds, piece.rows, piece.cols) @ lps_to_ras.T
        ijk = ras @ to_voxel[:3, :3].T + to_voxel[:3, 3]
        nearest = np.rint(ijk)
        inside = np.all((nearest >= 0) & (nearest < np.asarray(volume.shape)), axis=-1)
        if not inside.all() or np.abs(ijk - nearest).max() > GEOMETRY_TOLERANCE:
            continue
        i, j, k = (nearest[..., n].astype(int) for n in range(3))
        masks[index] = volume[i, j, k] != 0
    if not masks:
        raise MaskImportError(
            f"{path.name}: its voxel grid matches no slice of case {case_id} (shape "
            f"{volume.shape}); it must be a mask of this case's series, in its geometry"
        )
    return _store(conn, case_id, author, masks, slices, "nifti", path)


def import_seg(conn, path, case_id: str, slices: list[CaseSlice], author: str) -> int:
    """Import a DICOM SEG onto the case's slices (by referenced SOP Instance UID, else by
    geometry); return the stored version."""
    import highdicom

    path = Path(path)
    try:
        seg = highdicom.seg.segread(str(path))
    except Exception as exc:  # noqa: BLE001 - not a SEG, or a broken one
        raise MaskImportError(f"{path.name}: not a readable DICOM SEG ({exc})") from None
    known = {s.sop_instance_uid: i for i, s in enumerate(slices)}
    referenced = [uid for _, _, uid in seg.get_source_image_uids()]
    matched = [uid for uid in referenced if uid in known]
    if referenced and not matched:
        masks = _seg_by_geometry(seg, slices, path)
        if masks is None:
            raise MaskImportError(
                f"{path.name}: references {len(referenced)} image(s), none of them a slice of "
                f"case {case_id} (e.g. SOP Instance UID {referenced[0]}), and its frames' "
                "positions match none of the case's slices in its frame of reference"
            )
    elif matched:
        pixels = seg.get_pixels_by_source_instance(matched, combine_segments=True, dtype=np.uint8)
        masks = {known[uid]: _sized(pixels[n] != 0, slices[known[uid]], path)
                 for n, uid in enumerate(matched)}  # fmt: skip
    else:
        masks = _seg_by_geometry(seg, slices, path)
        if masks is None:
            raise MaskImportError(
                f"{path.name}: names no source image and matches none by position"
            )
    return _store(conn, case_id, author, masks, slices, "dicom-seg", path)


def _sized(mask: np.ndarray, piece: CaseSlice, path: Path) -> np.ndarray:
    if mask.shape != (piece.rows, piece.cols):
        raise MaskImportError(
            f"{path.name}: its mask is {mask.shape[1]}x{mask.shape[0]}, the slice it names is "
            f"{piece.cols}x{piece.rows}"
        )
    return mask


def _seg_by_geometry(seg, slices: list[CaseSlice], path: Path) -> dict | None:
    """Frames of a SEG matched to slices by ImagePositionPatient, within the slices' own frame of
    reference (positions in two frames of reference are not comparable)."""
    frames = np.asarray(seg.pixel_array)
    if frames.ndim == 2:
        frames = frames[None]
    positions = []
    for item in seg.PerFrameFunctionalGroupsSequence:
        plane = item.PlanePositionSequence[0] if "PlanePositionSequence" in item else None
        positions.append(None if plane is None else np.asarray(plane.ImagePositionPatient, float))
    masks: dict = {}
    reference = str(seg.get("FrameOfReferenceUID", ""))
    for ds_index, ds in enumerate(_headers(slices)):
        if not _has_geometry(ds) or str(ds.get("FrameOfReferenceUID", "")) != reference:
            continue
        ipp = np.asarray([float(v) for v in ds.ImagePositionPatient])
        for n, pos in enumerate(positions):
            if pos is not None and np.allclose(pos, ipp, atol=1e-3):
                mask = _sized(frames[n] != 0, slices[ds_index], path)
                masks[ds_index] = masks.get(ds_index, False) | mask
    return masks or None


def _store(conn, case_id, author, masks, slices, origin: str, path: Path) -> int:
    import hashlib

    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    detail = f"{path.name} (sha256 {digest})"
    try:
        return save_imported(conn, case_id, author, masks, origin=origin, detail=detail,
                             slices=slices)  # fmt: skip
    except MarkError as exc:
        raise MaskImportError(str(exc)) from None


def export_seg(marks: list[dict], slices: list[CaseSlice], out: Path, *, author: str) -> Path:
    """Write the marks (``marks_on_slices`` entries of one author) as a binary DICOM SEG that
    references the source images; one frame per marked slice, one segment ("Lesion")."""
    import highdicom
    import pydicom
    from pydicom.sr.codedict import codes

    from core.learning.provenance import code_version

    per_slice: dict[int, np.ndarray] = {}
    for entry in marks:
        piece = slices[entry["slice"]]
        mask = mark_mask(Mark.from_json(entry), piece.rows, piece.cols)
        per_slice[entry["slice"]] = per_slice.get(entry["slice"], False) | mask
    if not per_slice:
        raise MarkError(f"{author} has no marks on this case to export")
    order = sorted(per_slice)
    sources = [with_type2_attributes(pydicom.dcmread(slices[i].source.path)) for i in order]
    description = highdicom.seg.SegmentDescription(
        segment_number=1,
        segment_label="Lesion",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=highdicom.seg.SegmentAlgorithmTypeValues.MANUAL,
    )
    seg = highdicom.seg.Segmentation(
        source_images=sources,
        pixel_array=np.stack([per_slice[i] for i in order]).astype(np.uint8),
        segmentation_type=highdicom.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=highdicom.UID(),
        series_number=900,
        sop_instance_uid=highdicom.UID(),
        instance_number=1,
        manufacturer="CervixScope",
        manufacturer_model_name="CervixScope",
        software_versions=code_version()[:64],
        device_serial_number="0",
        content_label="LESION",
        content_creator_name=person_name(author),
        omit_empty_frames=False,
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out)
    return out
