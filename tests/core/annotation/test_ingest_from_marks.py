"""Ingestion takes a row's box from the stored marks when the manifest has none: the crops equal
those of a manifest holding the same boxes, and the provenance names the mark versions."""

from __future__ import annotations

import numpy as np
import pytest

import db
from core.annotation.marks import case_slices, save_drawn
from core.data.ingest import UNMARKED, ingest_folder
from tests.core.annotation.conftest import manifest_rows


def draw_manifest_boxes(conn, folder, author, shift=0):
    """Mark each slice with the box the manifest gives it (as an annotator would draw it)."""
    by_case: dict[str, list] = {}
    for row in manifest_rows(folder):
        case_id = db.case_key("internal", row["patient_id"])
        slices = case_slices(conn, case_id)
        index = next(i for i, s in enumerate(slices) if s.source.path.endswith(row["path"]))
        x0, y0, x1, y1 = (int(row[k]) for k in ("x0", "y0", "x1", "y1"))
        by_case.setdefault(case_id, []).append(
            {"slice": index, "kind": "box", "points": [[x0 + shift, y0], [x1 + shift, y1]]}
        )
    return {case: save_drawn(conn, case, author, marks) for case, marks in by_case.items()}


def test_unmarked_rows_are_registered_for_annotation_not_cropped(unmarked_db, tiny_cohort):
    images = db.images_frame(unmarked_db)
    assert len(images) == len(manifest_rows(tiny_cohort))
    assert images["roi_x0"].isna().all() and images["crop_index"].isna().all()
    again = ingest_folder(tiny_cohort, tiny_cohort / "manifest_no_boxes.csv", conn=unmarked_db,
                          progress=False)  # fmt: skip
    assert again.crops.n_images == 0
    assert {i.problem for i in again.warnings} == {UNMARKED}


def test_crops_from_marks_equal_crops_from_the_same_boxes_in_a_manifest(
    unmarked_db, tiny_cohort, tmp_path
):
    draw_manifest_boxes(unmarked_db, tiny_cohort, "Dr A")
    from_marks = ingest_folder(tiny_cohort, tiny_cohort / "manifest_no_boxes.csv",
                               conn=unmarked_db, progress=False)  # fmt: skip
    with_boxes = ingest_folder(tiny_cohort, progress=False, cache_dir=tmp_path / "cache")
    assert from_marks.errors == [] and from_marks.crops.n_images == with_boxes.crops.n_images
    order = np.argsort(from_marks.crops.image_ids)
    other = np.argsort(with_boxes.crops.image_ids)
    assert np.array_equal(from_marks.crops.image_ids[order], with_boxes.crops.image_ids[other])
    assert np.array_equal(from_marks.crops.crops[order], with_boxes.crops.crops[other])
    assert from_marks.crops.data_hash() != with_boxes.crops.data_hash()  # the hash names marks

    used = db.ingestion_marks_frame(unmarked_db, from_marks.ingestion_id)
    assert sorted(used["image_id"]) == sorted(from_marks.crops.image_ids.tolist())
    assert set(used["author"]) == {"Dr A"} and set(used["version"]) == {1}
    images = db.images_frame(unmarked_db).set_index("image_id")
    for row in manifest_rows(tiny_cohort):
        image_id = f"internal/{row['patient_id']}:{row['path']}#0"
        stored = tuple(images.loc[image_id, ["roi_x0", "roi_y0", "roi_x1", "roi_y1"]])
        assert stored == tuple(float(row[k]) for k in ("x0", "y0", "x1", "y1"))


def test_a_changed_mark_is_a_new_version_new_crops_and_a_new_data_hash(unmarked_db, tiny_cohort):
    draw_manifest_boxes(unmarked_db, tiny_cohort, "Dr A")
    first = ingest_folder(tiny_cohort, tiny_cohort / "manifest_no_boxes.csv", conn=unmarked_db,
                          progress=False)  # fmt: skip
    versions = draw_manifest_boxes(unmarked_db, tiny_cohort, "Dr A", shift=2)
    assert set(versions.values()) == {2}
    second = ingest_folder(tiny_cohort, tiny_cohort / "manifest_no_boxes.csv", conn=unmarked_db,
                           progress=False)  # fmt: skip
    assert not second.from_cache
    assert second.crops.data_hash() != first.crops.data_hash()
    assert not np.array_equal(second.crops.crops, first.crops.crops)
    used = db.ingestion_marks_frame(unmarked_db, second.ingestion_id)
    assert set(used["version"]) == {2}
    old = db.mark_versions_frame(unmarked_db, str(used["case_id"].iloc[0]))
    assert old["version"].tolist() == [2, 1]  # the old version is kept

    run_id = db.create_run(unmarked_db, model="cnn", mode="train", config={}, seed=0,
                           data_hash=second.crops.data_hash())  # fmt: skip
    behind = db.run_mark_versions(unmarked_db, run_id)
    assert sorted(behind["version_id"]) == sorted(used["version_id"])


def test_two_annotators_are_never_decided_silently(unmarked_db, tiny_cohort):
    draw_manifest_boxes(unmarked_db, tiny_cohort, "Dr A")
    draw_manifest_boxes(unmarked_db, tiny_cohort, "Dr B", shift=3)
    manifest = tiny_cohort / "manifest_no_boxes.csv"
    refused = ingest_folder(tiny_cohort, manifest, conn=unmarked_db, progress=False)
    assert refused.crops.n_images == 0
    assert all("has lesion marks by Dr A and Dr B; choose whose" in i.problem
               for i in refused.errors) and refused.errors  # fmt: skip
    by_b = ingest_folder(tiny_cohort, manifest, conn=unmarked_db, progress=False, marks_by="Dr B")
    assert set(db.ingestion_marks_frame(unmarked_db, by_b.ingestion_id)["author"]) == {"Dr B"}
    db.set_mark_choice(unmarked_db, "internal", "Dr A")
    chosen = ingest_folder(tiny_cohort, manifest, conn=unmarked_db, progress=False)
    assert set(db.ingestion_marks_frame(unmarked_db, chosen.ingestion_id)["author"]) == {"Dr A"}
    assert chosen.crops.data_hash() != by_b.crops.data_hash()


@pytest.mark.parametrize("author", ["admin"])
def test_the_admins_own_marks_count_like_an_annotators(unmarked_db, tiny_cohort, author):
    draw_manifest_boxes(unmarked_db, tiny_cohort, author)
    result = ingest_folder(tiny_cohort, tiny_cohort / "manifest_no_boxes.csv", conn=unmarked_db,
                           progress=False)  # fmt: skip
    assert result.errors == [] and result.crops.n_images == len(manifest_rows(tiny_cohort))
