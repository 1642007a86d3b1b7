"""Display IDs never spell a class name, however many are drawn."""

from __future__ import annotations

import hashlib
import re

import db
from core.data.labels import CLASSES
from db.display_ids import ALPHABET, code_from_digest, random_code

SPELLS_A_CLASS = re.compile("|".join(CLASSES), re.IGNORECASE)


def test_many_random_display_ids_spell_no_class_name():
    codes = [random_code() for _ in range(20_000)]
    assert len(set(codes)) > 19_990  # random, not a handful of values
    for prefix in ("C-", "A-"):
        spelled = [prefix + c for c in codes if SPELLS_A_CLASS.search(prefix + c)]
        assert spelled == []


def test_derived_codes_are_stable_and_spell_no_class_name():
    digests = [hashlib.sha256(f"study\x1f{i}".encode()).digest() for i in range(20_000)]
    codes = [code_from_digest(d) for d in digests]
    assert codes == [code_from_digest(d) for d in digests]
    assert all(set(c) <= set(ALPHABET) and len(c) == 6 for c in codes)
    assert not [c for c in codes if SPELLS_A_CLASS.search("A-" + c)]


def test_cases_stored_through_db_get_ids_that_spell_no_class(db_path):
    rows = [{"case_id": f"internal/P{i:04d}", "label": CLASSES[i % 3]} for i in range(3_000)]
    with db.connect(db_path) as conn:
        db.upsert_cases(conn, rows)
        shown = db.cases_frame(conn)["display_id"]
    assert shown.is_unique and len(shown) == 3_000
    assert not shown[shown.str.contains(SPELLS_A_CLASS)].tolist()
