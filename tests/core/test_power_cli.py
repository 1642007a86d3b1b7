"""`cervixscope power ...`: the Van Dyke pilot from an iMRMC file and typed-in components give
RJafroc's numbers; bad input is one line on stderr with exit status 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.cli import main
from core.statistics import mrmc

VANDYKE = Path(__file__).parents[1] / "data" / "vandyke" / "vandyke_roc.csv"
TYPED = [
    "--var", "0.00080228827", "--cov1", "0.00034661371", "--cov2", "0.00034407483",
    "--cov3", "0.00023902837", "--var-tr", "0.00020040252", "--pilot-cases", "114",
]  # fmt: skip


@pytest.fixture(scope="module")
def pilot(tmp_path_factory):
    frame = pd.read_csv(VANDYKE).rename(columns={"treatment": "modality", "rating": "score"})
    return mrmc.write_imrmc(frame, tmp_path_factory.mktemp("power") / "vandyke.imrmc")


@pytest.mark.parametrize(
    "analysis, cases, expected",
    [("random", "165", "0.80541995"), ("fixed_readers", "131", "0.80091813"),
     ("fixed_cases", "53", "0.80496663")],
    ids=["RRRC", "FRRC", "RRFC"],
)  # fmt: skip
def test_power_given_from_an_imrmc_pilot(pilot, capsys, analysis, cases, expected):
    argv = ["power", "given", "--imrmc", str(pilot), "--readers", "10", "--cases", cases]
    assert main([*argv, "--effect", "-0.043800322", "--analysis", analysis]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"power {expected}"
    assert f"With 10 readers and {cases} cases" in out


def test_power_cases_from_typed_components(capsys):
    # RJafroc: SsSampleSizeKGivenJ(dataset02, J = 6, "Wilcoxon", method = "OR")$KRRRC = 251
    assert main(["power", "cases", *TYPED, "--readers", "6", "--effect", "-0.0438003220612"]) == 0
    assert capsys.readouterr().out.startswith("cases 251 (power 0.8005")


def test_power_table(pilot, capsys):
    argv = ["power", "table", "--imrmc", str(pilot), "--readers", "4,8", "--cases", "100,200"]
    assert main(argv) == 0
    table = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out), index_col=0)
    assert list(table.index) == [4, 8] and list(table.columns) == ["100", "200"]
    assert table.loc[8, "200"] > table.loc[4, "100"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["power", "given", "--readers", "5", "--cases", "100"], "give the pilot one way"),
        (["power", "given", "--var", "0.1", "--readers", "5", "--cases", "100"], "need all of"),
        (["power", "table", *TYPED, "--effect", "0.05", "--readers", "4,x", "--cases", "9"],
         "--readers '4,x' is not a comma-separated list"),
        (["power", "given", *TYPED, "--readers", "5", "--cases", "100"], "effect_size=None"),
        (["power", "cases", *TYPED, "--effect", "0.01", "--readers", "3"], "do not reach power"),
    ],
    ids=["no-pilot", "partly-typed", "bad-list", "no-effect", "unreachable"],
)  # fmt: skip
def test_bad_input_is_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert err.startswith("cervixscope power: error: ") and message in err


def test_missing_imrmc_file(capsys, tmp_path):
    assert main(["power", "given", "--imrmc", str(tmp_path / "no.imrmc"), "--readers", "5",
                 "--cases", "50"]) == 2  # fmt: skip
    assert "No such file" in capsys.readouterr().err
