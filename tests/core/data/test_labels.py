"""Class names to indices: the same for every way a column of labels arrives."""

import numpy as np
import pandas as pd
import pytest

from core.data.labels import CLASSES, class_indices


@pytest.mark.parametrize("dtype", [object, "string[pyarrow]", "category"])
def test_class_indices_are_positions_in_classes_whatever_the_column_type(dtype):
    labels = ["ASC", "SCC", "AC", "SCC", "ASC"]
    got = class_indices(pd.Series(labels, dtype=dtype))
    assert got.dtype == np.int64
    assert got.tolist() == [CLASSES.index(label) for label in labels]
    assert class_indices(labels).tolist() == got.tolist()


def test_an_unknown_or_missing_label_is_named():
    with pytest.raises(ValueError, match=r"\['<NA>', 'adeno'\].*SCC, AC, ASC"):
        class_indices(pd.Series(["SCC", "adeno", None, "AC"], dtype="string[pyarrow]"))
