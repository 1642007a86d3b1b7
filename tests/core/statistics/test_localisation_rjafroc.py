"""wAFROC and its Obuchowski-Rockette analysis against RJafroc's values for its dataset04.

The data file is RJafroc's own (``data/dataset04.RData``, read with the ``rdata`` package) and the
values are RJafroc 2.1.3's output for it (tests/data/rjafroc/README.md says how they were made).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.statistics import localisation, mrmc

HERE = Path(__file__).parents[2] / "data" / "rjafroc"
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def good():
    return json.loads((HERE / "dataset04_wafroc_or.json").read_text())


@pytest.fixture(scope="module")
def dataset04() -> localisation.FrocData:
    rdata = pytest.importorskip("rdata")
    ds = rdata.read_rda(str(HERE / "dataset04.RData"))["dataset04"]
    nl = np.asarray(ds["ratings"]["NL"], dtype=float)
    ll = np.asarray(ds["ratings"]["LL"], dtype=float)
    per_case = np.asarray(ds["lesions"]["perCase"], dtype=int)
    weights = np.asarray(ds["lesions"]["weights"], dtype=float)
    k, k2 = nl.shape[2], ll.shape[2]
    # RJafroc orders the non-diseased cases first; weights are -inf beyond a case's lesions
    diseased = np.arange(k) >= k - k2
    return localisation.FrocData(
        nl=nl,
        ll=ll,
        diseased=diseased,
        weights=np.where(np.isfinite(weights), weights, 0.0),
        modalities=tuple(f"trt{m}" for m in ds["descriptions"]["modalityID"]),
        readers=tuple(f"rdr{r}" for r in ds["descriptions"]["readerID"]),
        cases=tuple(range(k)),
    ), per_case


def test_dataset04_is_the_documented_design(dataset04):
    data, per_case = dataset04
    assert data.nl.shape == (5, 4, 200, 7) and data.ll.shape == (5, 4, 100, 3)
    assert per_case.max() == 3 and np.allclose(data.weights.sum(axis=1), 1.0)


def test_wafroc_per_reader_and_modality_equals_rjafroc(dataset04, good):
    data, _ = dataset04
    assert list(data.modalities) == good["modalities"] and list(data.readers) == good["readers"]
    np.testing.assert_allclose(
        localisation.wafroc(data), np.array(good["wafroc_foms_by_modality"]), rtol=0, atol=TOLERANCE
    )


def _or(data, analysis):
    return mrmc.or_analysis_of_jackknife(
        "wAFROC",
        localisation.wafroc_jackknife(data),
        localisation.wafroc(data),
        modalities=list(data.modalities),
        readers=list(data.readers),
        cases=list(data.cases),
        analysis=analysis,
    )


def test_or_random_readers_equals_rjafroc(dataset04, good):
    result = _or(dataset04[0], "random_readers")
    got = [result.statistic, result.ddf, result.p_value, result.ms_T, result.ms_TR]
    want = [good[k] for k in ("rrrc_F", "rrrc_ddf", "rrrc_p", "ms_T", "ms_TR")]
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)
    components = [result.var_error, result.cov1, result.cov2, result.cov3, result.var_R]
    want = [good[k] for k in ("var", "cov1", "cov2", "cov3", "var_R")]
    np.testing.assert_allclose(components, want, rtol=0, atol=TOLERANCE)
    assert result.var_TR == pytest.approx(good["var_TR"], abs=TOLERANCE)


def test_or_fixed_readers_equals_rjafroc(dataset04, good):
    result = _or(dataset04[0], "fixed_readers")
    assert result.statistic == pytest.approx(good["frrc_chisq"], abs=TOLERANCE)
    assert result.p_value == pytest.approx(good["frrc_p"], abs=TOLERANCE)


def test_the_closed_form_jackknife_equals_deleting_each_case(dataset04):
    data, _ = dataset04
    jk = localisation.wafroc_jackknife(data)
    diseased_index = np.cumsum(data.diseased) - 1
    for case in (0, 57, 150, 199):  # two non-diseased, two diseased
        keep = np.arange(data.diseased.size) != case
        ll_keep = np.ones(int(data.diseased.sum()), bool)
        if data.diseased[case]:
            ll_keep[diseased_index[case]] = False
        smaller = localisation.FrocData(
            nl=data.nl[:, :, keep], ll=data.ll[:, :, ll_keep], diseased=data.diseased[keep],
            weights=data.weights[ll_keep], modalities=data.modalities, readers=data.readers,
            cases=tuple(np.array(data.cases)[keep]),
        )  # fmt: skip
        np.testing.assert_allclose(jk[:, :, case], localisation.wafroc(smaller), atol=1e-12)
