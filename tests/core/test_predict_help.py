"""`cervixscope predict --help` shows an example file that the demo cohort really has."""

from __future__ import annotations

import csv
import re

from core.cli import main


def test_the_predict_example_names_a_file_the_demo_has(small_cohort_dir, capsys):
    """The demo cohort's files are named the same for any counts; the small cohort is seed 0."""
    try:
        main(["predict", "--help"])
    except SystemExit:
        pass
    text = capsys.readouterr().out
    found = re.search(r"cervixscope predict data/demo/(\S+) --roi (\S+) ", text)
    assert found, text
    rel = found.group(1)
    assert (small_cohort_dir / rel).is_file()
    with open(small_cohort_dir / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = {r["path"]: r for r in csv.DictReader(fh)}
    assert rel in rows and "manifest.csv" in text
