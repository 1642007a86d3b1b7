"""Saved analysis results round-trip exactly, and a payload can build nothing but data."""

from __future__ import annotations

import collections
import json
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from core.project import saved_values
from core.statistics.stats import KappaInterval


def test_frames_arrays_figures_and_core_records_come_back_equal():
    frame = pd.DataFrame(
        {("AUC", "value"): [0.81, np.nan], ("AUC", "text"): ["0.81 (0.7-0.9)", ""]},
        index=pd.Index(["Model", "Dr A"], name="rater"),
    )
    figure = go.Figure(go.Scatter(x=[0, 0.5, 1], y=[0, 0.9, 1], name="Dr A"))
    value = (
        frame,
        frame["AUC"]["value"],
        np.arange(6, dtype=np.float32).reshape(2, 3),
        KappaInterval(0.5, 0.25, 0.75, math.nan, "bootstrap"),
        {"n": 3, ("a", 1): [True, None, math.inf]},
        figure,
    )
    back = saved_values.decode(saved_values.encode(value))
    pd.testing.assert_frame_equal(back[0], frame)
    pd.testing.assert_series_equal(back[1], frame["AUC"]["value"])
    assert back[2].dtype == np.float32 and (back[2] == value[2]).all()
    assert isinstance(back[3], KappaInterval) and back[3][:3] == (0.5, 0.25, 0.75)
    assert math.isnan(back[3].se) and back[3].method == "bootstrap"
    assert back[4] == {"n": 3, ("a", 1): [True, None, math.inf]}
    assert isinstance(back[5], go.Figure) and list(back[5].data[0].y) == [0, 0.9, 1]


def test_what_cannot_be_saved_is_refused_when_encoding():
    with pytest.raises(TypeError, match="function cannot be saved"):
        saved_values.encode({"f": lambda: 1})
    with pytest.raises(TypeError, match="frame cannot be saved"):
        saved_values.encode(pd.DataFrame({"mixed": [1.0, "x"]}))
    with pytest.raises(TypeError, match="not a CervixScope class"):
        saved_values.encode(collections.namedtuple("Elsewhere", "x")(1))


@pytest.mark.parametrize(
    "document",
    [
        {"__saved__": "dataclass", "class": "subprocess:Popen", "v": {"args": "true"}},
        {"__saved__": "namedtuple", "class": "core.project.saved_values:encode", "v": []},
        {"__saved__": "pickle", "v": "gASVBAAAAAAAAAB9lC4="},
    ],
)
def test_a_payload_naming_anything_but_a_core_record_is_refused(document):
    with pytest.raises(ValueError, match="not a saved value"):
        saved_values.decode(json.dumps(document).encode())


def test_garbage_is_refused():
    with pytest.raises(ValueError, match="not a saved value"):
        saved_values.decode(b"\x80\x04not json")


def test_the_frame_digest_follows_the_values_not_the_index():
    frame = pd.DataFrame({"case_id": ["a", "b"], "c_SCC": [0.7, 0.2]})
    same = frame.set_axis([10, 11])
    changed = frame.assign(c_SCC=[0.7, 0.3])
    assert saved_values.frame_digest(frame) == saved_values.frame_digest(same)
    assert saved_values.frame_digest(frame) != saved_values.frame_digest(changed)
    assert saved_values.frame_digest(frame) != saved_values.frame_digest(
        frame.astype({"c_SCC": "float32"})
    )
