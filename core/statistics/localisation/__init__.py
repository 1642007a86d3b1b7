"""Localisation figures of merit: FROC and weighted AFROC (as RJafroc), and LROC.

``froc`` holds the FROC data layout, the wAFROC figure of merit with its closed-form jackknife
and the empirical FROC / AFROC points; ``lroc`` the LROC curve and its area. Their MRMC analysis
is the Obuchowski-Rockette engine's (:func:`core.statistics.mrmc.or_analysis_of_jackknife`).
"""

from core.statistics.localisation.froc import (
    FrocData,
    afroc_points,
    equal_weights,
    froc_points,
    pair_kernel_jackknife,
    wafroc,
    wafroc_jackknife,
    wafroc_kernel,
)
from core.statistics.localisation.lroc import LrocCurve, alroc_pairs, lroc_curve

__all__ = [
    "FrocData",
    "LrocCurve",
    "afroc_points",
    "alroc_pairs",
    "equal_weights",
    "froc_points",
    "pair_kernel_jackknife",
    "lroc_curve",
    "wafroc",
    "wafroc_jackknife",
    "wafroc_kernel",
]
