"""Repeat reads (intra-reader agreement; MRMC inputs unchanged), which reads an MRMC analysis
uses and why (crossed, crossed subset, split-plot), and the few-readers flag, on hand-built
reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data.labels import CLASSES
from core.reader_study import analysis, mrmc_inputs
from core.reader_study.study_data import StudyData
from core.statistics import mrmc, stats

CASES = [f"K{i}" for i in range(1, 13)]
TRUTH = ["SCC", "AC", "ASC"] * 4


def _reads(reader, cases, arm="unaided", *, shift=0, repeat=False, labels=None):
    """Reads of ``cases``; labels right except every third case after ``shift``."""
    idx = [CASES.index(c) for c in cases]
    truth = [TRUTH[i] for i in idx]
    if labels is None:
        labels = [
            t if (i + shift) % 3 else CLASSES[(CLASSES.index(t) + 1) % 3]
            for i, t in zip(idx, truth, strict=True)
        ]
    rng = np.random.default_rng(len(reader) + shift)
    frame = pd.DataFrame({"case_id": cases, "truth": truth, "label": labels})
    for c in CLASSES:
        frame[f"c_{c}"] = np.where(frame["label"] == c, 0.7, 0.15) + rng.uniform(0, 0.1, len(cases))
    return frame.assign(
        reader=reader, reader_id=0, simulated=False, arm=arm, seconds=1.0, repeat=repeat
    )


def _study(*frames, arms=("unaided",)):
    return StudyData({"arms": arms}, pd.concat(frames, ignore_index=True), None)


# --------------------------------------------------------------------------- repeat reads


def test_intra_reader_agreement_by_hand():
    first = _reads("A", CASES[:6])
    again = first.iloc[:4].assign(repeat=True).copy()
    again.loc[again.index[3], "label"] = "SCC" if again["label"].iloc[3] != "SCC" else "AC"
    table = analysis.intra_reader_agreement(pd.concat([first, again], ignore_index=True))
    row = table.set_index("reader").loc["A"]
    assert row["repeated cases"] == 4 and row["agreement %"] == 75.0
    ci = stats.cohen_kappa_ci(first["label"].iloc[:4].to_numpy(), again["label"].to_numpy())
    assert row["Cohen's kappa"] == pytest.approx(ci.kappa)
    assert (row["95% CI low"], row["95% CI high"]) == (
        pytest.approx(ci.low),
        pytest.approx(ci.high),
    )


def test_no_repeats_gives_an_empty_table():
    assert analysis.intra_reader_agreement(_reads("A", CASES[:6])).empty


def test_repeats_leave_the_mrmc_inputs_unchanged():
    base = _study(_reads("A", CASES), _reads("B", CASES, shift=1))
    repeats = _reads("A", CASES[:5], repeat=True, labels=["AC"] * 5)
    with_repeats = _study(base.reads, repeats)
    pd.testing.assert_frame_equal(
        mrmc_inputs.mrmc_reads(base, ["unaided"]), mrmc_inputs.mrmc_reads(with_repeats, ["unaided"])
    )
    selection = mrmc_inputs.read_selection(with_repeats, ["unaided"])
    assert selection.n_used == selection.n_total == 24
    assert "5 repeat read(s)" in selection.explanation


# --------------------------------------------------------------------------- designs


def test_crossed_design_uses_every_read():
    data = _study(_reads("A", CASES), _reads("B", CASES, shift=1))
    selection = mrmc_inputs.read_selection(data, ["unaided"])
    assert selection.design == "crossed" and selection.n_used == 24
    assert selection.explanation.startswith("All 24 reads used")


def test_partial_reads_use_the_crossed_subset_and_say_so():
    data = _study(_reads("A", CASES), _reads("B", CASES[:9], shift=1))
    selection = mrmc_inputs.read_selection(data, ["unaided"])
    assert selection.design == "crossed" and (selection.n_used, selection.n_total) == (18, 21)
    assert "18 of 21 reads used" in selection.explanation and "9 cases" in selection.explanation


def test_split_plot_design_is_analysed_with_every_read():
    frames = [
        _reads(r, CASES[:6] if r in "AB" else CASES[6:], arm=arm, shift=s)
        for r, s in zip("ABCD", range(4), strict=True)
        for arm in ("unaided", "aided")
    ]
    aided = [f.assign(label=f["truth"]) if f["arm"].iloc[0] == "aided" else f for f in frames]
    data = _study(*aided, arms=("unaided", "aided"))
    selection = mrmc_inputs.read_selection(data, ["aided", "unaided"])
    assert selection.design == "split-plot" and selection.n_used == selection.n_total == 48
    assert "2 reader groups" in selection.explanation
    assert mrmc_inputs.mrmc_reads(data, ["aided", "unaided"]).empty  # no case crossed by all
    result = mrmc_inputs.mrmc_aided_vs_unaided(data, fom="accuracy")
    expected = mrmc.split_plot_analysis(selection.frame, fom="accuracy")
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.n_cases == 12 and result.n_readers == 4


def test_noninferiority_of_aided_reading_flips_at_the_margin():
    frames = [_reads(r, CASES, shift=s) for s, r in enumerate("ABCD")]
    for s, r in enumerate("ABCD"):  # aided: wrong on one case in (2 + s), so worse than unaided
        wrong = [CLASSES[(CLASSES.index(t) + 1) % 3] for t in TRUTH]
        labels = [
            w if i % (2 + s) == 0 else t for i, (t, w) in enumerate(zip(TRUTH, wrong, strict=False))
        ]
        frames.append(_reads(r, CASES, arm="aided", labels=labels))
    data = _study(*frames, arms=("unaided", "aided"))
    result = mrmc_inputs.mrmc_aided_vs_unaided(data, fom="accuracy")
    exact = mrmc_inputs.noninferiority(result, margin=1.0)
    threshold = -exact.lower_bound
    assert mrmc_inputs.noninferiority(result, margin=threshold + 1e-6).non_inferior
    assert not mrmc_inputs.noninferiority(result, margin=threshold - 1e-6).non_inferior
    assert "aided" in exact.summary() and "unaided" in exact.summary()


def test_few_readers_flag():
    data = _study(_reads("A", CASES), _reads("B", CASES, shift=1))
    assert mrmc_inputs.few_readers(data, "unaided")
    more = _study(*[_reads(r, CASES, shift=i) for i, r in enumerate("ABCD")])
    assert not mrmc_inputs.few_readers(more, "unaided")


def test_a_study_as_a_power_pilot():
    frames = [_reads(r, CASES, shift=s) for s, r in enumerate("ABCD")]
    frames += [_reads(r, CASES, arm="aided", shift=s + 1) for s, r in enumerate("ABCD")]
    data = _study(*frames, arms=("unaided", "aided"))
    pilot = mrmc_inputs.pilot_components(data, fom="auc_macro")
    result = mrmc.or_analysis(mrmc_inputs.mrmc_reads(data, ["aided", "unaided"]), fom="auc_macro")
    assert pilot.n_cases == 12 and pilot.n_readers == 4
    assert pilot.var == result.var_error and pilot.var_tr == result.var_TR
    assert pilot.effect_size == pytest.approx(
        result.modality_means["aided"] - result.modality_means["unaided"]
    )
    with pytest.raises(ValueError, match="both the unaided and the aided arm"):
        mrmc_inputs.pilot_components(_study(*frames[:4]))
