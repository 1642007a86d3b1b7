"""Case covariance of the reader x modality FOMs, and its Obuchowski-Rockette averages.

Three estimators: the jackknife with the (K-1)^2/K scaling, DeLong's (single-AUC FOMs), and a
bootstrap that resamples cases within each truth class (as RJafroc). The (t*J)^2 matrix is then
averaged into Var, Cov1, Cov2 and Cov3.
"""

from __future__ import annotations

import numpy as np

from core.statistics.mrmc.figures_of_merit import Fom, fom_jackknife, fom_values
from core.statistics.stats import delong_covariance

COVARIANCES = ("jackknife", "delong", "bootstrap")


def jackknife_covariance(jk: np.ndarray) -> np.ndarray:
    """(t*J, t*J) covariance of leave-one-case-out FOMs ``jk`` (t, J, K), scaled by (K-1)^2/K."""
    t, j, k = jk.shape
    return np.cov(jk.reshape(t * j, k)) * (k - 1) ** 2 / k


def _jackknife_covariance(fom: Fom) -> np.ndarray:
    return jackknife_covariance(fom_jackknife(fom))


def _delong_covariance(fom: Fom) -> np.ndarray:
    if not fom.is_single_auc:
        raise ValueError(
            f"cov='delong' needs a single-AUC FOM ('auc' or 'auc:<class>'), got {fom.name!r}; "
            "use cov='jackknife' or 'bootstrap'"
        )
    part = fom.parts[0]
    t, j, k = part.values.shape
    return delong_covariance(part.mask.astype(int), part.values.reshape(t * j, k))[1]


def _strata(fom: Fom) -> list[np.ndarray]:
    """Cases grouped by truth, so every bootstrap sample keeps the class counts (as RJafroc)."""
    _, codes = np.unique(np.asarray(fom.truth).astype(str), return_inverse=True)
    return [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]


def _bootstrap_covariance(fom: Fom, n_boot: int, seed: int) -> np.ndarray:
    if not isinstance(n_boot, int | np.integer) or n_boot < 2:
        raise ValueError(f"n_boot={n_boot!r} is not allowed: use an integer >= 2")
    rng = np.random.default_rng(seed)
    strata = _strata(fom)
    draws = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(s, size=s.size, replace=True) for s in strata])
        draws.append(fom_values(fom, idx).ravel())
    return np.cov(np.array(draws).T)


def fom_covariance(fom: Fom, method: str, n_boot: int, seed: int) -> np.ndarray:
    """Covariance matrix (t*J, t*J) of the reader x modality FOMs across cases.

    Parameters
    ----------
    fom : Fom
    method : {"jackknife", "delong", "bootstrap"}
    n_boot, seed : int
        Bootstrap only.

    Returns
    -------
    ndarray
        Rows and columns in modality-major order (modality 0's readers first).
    """
    if method == "jackknife":
        return _jackknife_covariance(fom)
    if method == "delong":
        return _delong_covariance(fom)
    if method == "bootstrap":
        return _bootstrap_covariance(fom, n_boot, seed)
    raise ValueError(f"cov={method!r} is not allowed: use one of {', '.join(COVARIANCES)}")


def or_components(cov: np.ndarray, t: int, j: int) -> tuple[float, float, float, float]:
    """Average the (t*J)^2 covariance matrix into Var, Cov1, Cov2, Cov3.

    Var: same reader, same modality; Cov1: same reader, other modality; Cov2: other reader,
    same modality; Cov3: other reader, other modality. An empty average is 0.
    """
    c = cov.reshape(t, j, t, j)
    same_m = np.eye(t, dtype=bool)[:, None, :, None]
    same_r = np.eye(j, dtype=bool)[None, :, None, :]

    def mean(mask):
        mask = np.broadcast_to(mask, c.shape)
        return float(c[mask].mean()) if mask.any() else 0.0

    return (
        mean(same_m & same_r),
        mean(~same_m & same_r),
        mean(same_m & ~same_r),
        mean(~same_m & ~same_r),
    )


def reader_components(cov: np.ndarray) -> tuple[float, float]:
    """Var and Cov2 of one modality's (J, J) block: the mean diagonal and off-diagonal entries."""
    j = cov.shape[0]
    var = float(np.diag(cov).mean())
    cov2 = float(cov[~np.eye(j, dtype=bool)].mean()) if j > 1 else 0.0
    return var, cov2
