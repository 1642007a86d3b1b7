"""The classifier head of features mode: standardise -> (PCA) -> (SMOTE) -> multinomial logistic
regression.

Fitted on one training fold only; the test fold is only ever predicted.

Two heads (``RunConfig.head_solver``):

- ``pca-newton`` (default): PCA to ``head_dim`` components fitted on the training fold, then
  Newton-Cholesky. Its cost is linear in the number of cases: the PCA is one pass over the rows
  plus a fixed d x d eigenproblem, and Newton on 64 x 3 coefficients converges in ~5 iterations
  whatever N (measured 5-6 at 641 and at 2,564 patients).
- ``newton-cg``: the head before issue 14, on all features. With ``C`` fixed the problem grows
  ill-conditioned with N (the penalty shrinks against the summed loss): iterations and Hessian
  products grow with N, and the ten heads of a 10-fold CV cost ~N^1.4-1.85 (7x the time at 4x the
  cases, measured). Kept so earlier runs can be reproduced.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from core.data.labels import CLASSES
from core.learning.config import RunConfig


def smote_k_neighbors(y: np.ndarray, k: int) -> int | None:
    """SMOTE's k for this training fold: at most (smallest class count - 1); None if < 1."""
    smallest = int(np.bincount(y)[np.unique(y)].min())
    k = min(k, smallest - 1)
    return k if k >= 1 else None


class LinearHead:
    """Standardise -> (PCA) -> (SMOTE) -> multinomial logistic regression, on one training fold.

    Parameters
    ----------
    cfg : RunConfig
        Uses ``head_solver``, ``head_dim``, ``head_c``, ``balance`` (``smote`` oversamples,
        ``weights`` balances the loss) and ``smote_k``.
    seed : int
        SMOTE's random state.
    """

    def __init__(self, cfg: RunConfig, *, seed: int):
        self.cfg = cfg
        self.seed = seed
        self.scaler = StandardScaler()
        self.pca: PCA | None = None
        pca_newton = cfg.head_solver == "pca-newton"
        self.clf = LogisticRegression(
            C=cfg.head_c,
            max_iter=100 if pca_newton else 3000,
            solver="newton-cholesky" if pca_newton else "newton-cg",
            class_weight="balanced" if cfg.balance == "weights" else None,
        )
        self.notes: list[str] = []

    def fit(self, x: np.ndarray, y: np.ndarray) -> LinearHead:
        xs = self.scaler.fit_transform(x)
        if self.cfg.head_solver == "pca-newton":
            xs = self._fit_pca(xs)
        if self.cfg.balance == "smote":
            xs, y = self._smote(xs, y)
        # One BLAS thread: these matrices are small, and multi-threaded OpenBLAS on a busy 2-core
        # machine made one fit 40x slower (9.5 s vs 0.23 s, measured).
        with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
            warnings.simplefilter("ignore", category=UserWarning)
            self.clf.fit(xs, y)
        return self

    def _fit_pca(self, xs: np.ndarray) -> np.ndarray:
        n = min(self.cfg.head_dim, *xs.shape)
        # Few components of many: a seeded randomized SVD (about 2x faster than the d x d
        # eigenproblem here, measured). Most of them: covariance_eigh, exact. Both deterministic.
        solver = "randomized" if 4 * n <= min(xs.shape) else "covariance_eigh"
        self.pca = PCA(n_components=n, svd_solver=solver, random_state=self.seed)
        with threadpool_limits(1, user_api="blas"):
            return self.pca.fit_transform(xs)

    def _smote(self, xs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from imblearn.over_sampling import SMOTE

        k = smote_k_neighbors(y, self.cfg.smote_k)
        if k is None:
            self.notes.append("SMOTE skipped: a class has a single training sample")
            return xs, y
        if k < self.cfg.smote_k:
            self.notes.append(f"SMOTE k_neighbors reduced to {k} (few minority samples)")
        return SMOTE(k_neighbors=k, random_state=self.seed).fit_resample(xs, y)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        with threadpool_limits(1, user_api="blas"):
            xs = self.scaler.transform(x)
            if self.pca is not None:
                xs = self.pca.transform(xs)
            proba = self.clf.predict_proba(xs)
        full = np.zeros((len(x), len(CLASSES)))
        full[:, self.clf.classes_] = proba  # a class absent from training gets probability 0
        return full

    def as_linear(self) -> tuple[np.ndarray, np.ndarray]:
        """Weight (n_classes, d) and bias folding the scaler (and PCA) in: logits = W @ x + b."""
        scale = np.where(self.scaler.scale_ > 0, self.scaler.scale_, 1.0)
        coef, intercept = self.clf.coef_, self.clf.intercept_
        if self.pca is not None:  # z = components @ (xs - pca.mean_)
            intercept = intercept - coef @ self.pca.components_ @ self.pca.mean_
            coef = coef @ self.pca.components_
        w = np.zeros((len(CLASSES), coef.shape[1]))
        b = np.full(len(CLASSES), -1e4)  # absent classes never win
        w[self.clf.classes_] = coef / scale
        b[self.clf.classes_] = intercept - (coef * self.scaler.mean_ / scale).sum(1)
        return w, b
