"""The features-mode heads: the scalable ``pca-newton`` is the same L2 logistic regression as the
pre-issue-14 ``newton-cg`` when it keeps every component (the penalty is rotation-invariant), and
its Newton iterations do not grow with the number of cases."""

from __future__ import annotations

import numpy as np
import pytest

from core.learning.config import RunConfig
from core.learning.heads import LinearHead


def _embeddings(n: int, d: int = 24, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    mixing = rng.standard_normal((d, d)) * 0.3 + np.eye(d)
    x = (rng.standard_normal((n, d)) + 0.8 * np.eye(3, d)[y] * 3) @ mixing + 5.0
    return x, y


@pytest.mark.parametrize("balance", ["none", "weights"])
def test_pca_newton_with_every_component_is_the_newton_cg_head(balance):
    x, y = _embeddings(300)
    full = RunConfig(weights="none", balance=balance, head_solver="pca-newton", head_dim=24)
    old = full.replace(head_solver="newton-cg")
    a = LinearHead(full, seed=0).fit(x[:200], y[:200])
    b = LinearHead(old, seed=0).fit(x[:200], y[:200])
    # equal up to the solvers' tolerances (a wrong rotation or centring would be off by far more)
    np.testing.assert_allclose(a.predict_proba(x[200:]), b.predict_proba(x[200:]), atol=3e-3)


def test_the_folded_linear_map_reproduces_the_pca_head():
    x, y = _embeddings(400, d=40)
    head = LinearHead(RunConfig(weights="none", head_dim=8), seed=3).fit(x[:300], y[:300])
    w, b = head.as_linear()
    logits = x[300:] @ w.T + b
    proba = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(proba / proba.sum(1, keepdims=True), head.predict_proba(x[300:]))


def test_newton_iterations_do_not_grow_with_the_cases():
    iterations = []
    for n in (500, 2000):
        x, y = _embeddings(n, d=96, seed=1)
        head = LinearHead(RunConfig(weights="none", head_dim=32), seed=0).fit(x, y)
        iterations.append(int(head.clf.n_iter_.max()))
    assert max(iterations) <= 12, iterations


def test_an_unknown_head_solver_is_named():
    with pytest.raises(ValueError, match="head_solver='lbfgs': expected one of pca-newton"):
        RunConfig(head_solver="lbfgs")
