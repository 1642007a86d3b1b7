"""Multi-reader multi-case (MRMC) analysis: Obuchowski-Rockette with Hillis' degrees of freedom.

Input is one long table of reads with columns ``reader, modality, case, truth`` plus the columns
the figure of merit (FOM) needs: ``score`` (a rating, or a class label for label FOMs), ``label``
(preferred over ``score`` for label FOMs) and ``c_SCC, c_AC, c_ASC`` (per-class confidences).
Every reader must read every case in every modality (a fully crossed design).

Method (Obuchowski & Rockette 1995; Hillis 2007; as in RJafroc and the Iowa OR-DBM MRMC program):
the FOM of each reader x modality, the covariance of those FOMs across cases (jackknife with the
(K-1)^2/K scaling, DeLong, or a stratified bootstrap), averaged into Var (same reader, same
modality), Cov1 (same reader, other modality), Cov2 (other reader, same modality) and Cov3 (other
reader, other modality). Random readers: F = MS(T) / [MS(T*R) + J max(Cov2 - Cov3, 0)] on
(t-1, ddf_H) degrees of freedom. Fixed readers: chi-square = (t-1) MS(T) / [Var - Cov1 +
(J-1) max(Cov2 - Cov3, 0)] on t-1 degrees of freedom.

Modules, one job each: ``design`` (the reads as arrays, and the setup both analyses share),
``figures_of_merit`` (AUC / proportion FOMs and their jackknife), ``covariance`` (jackknife,
DeLong, bootstrap covariances and the OR averages), ``obuchowski_rockette`` (:func:`or_analysis`),
``model_vs_readers`` (:func:`standalone_vs_readers`), ``imrmc`` (export for iMRMC / RJafroc),
``split_plot`` (:func:`split_plot_analysis`: reader groups each reading their own cases),
``noninferiority`` (one-sided tests with a margin).
"""

from core.statistics.mrmc.covariance import COVARIANCES
from core.statistics.mrmc.design import ANALYSES, REQUIRED
from core.statistics.mrmc.imrmc import read_imrmc, to_imrmc, write_imrmc
from core.statistics.mrmc.model_vs_readers import StandaloneResult, standalone_vs_readers
from core.statistics.mrmc.noninferiority import (
    NonInferiorityResult,
    modality_noninferiority,
    model_noninferiority,
    noninferiority_test,
)
from core.statistics.mrmc.obuchowski_rockette import ORResult, or_analysis, or_analysis_of_jackknife
from core.statistics.mrmc.split_plot import reader_groups, split_plot_analysis

__all__ = [
    "ANALYSES",
    "COVARIANCES",
    "REQUIRED",
    "NonInferiorityResult",
    "ORResult",
    "StandaloneResult",
    "modality_noninferiority",
    "model_noninferiority",
    "noninferiority_test",
    "or_analysis",
    "or_analysis_of_jackknife",
    "read_imrmc",
    "reader_groups",
    "split_plot_analysis",
    "standalone_vs_readers",
    "to_imrmc",
    "write_imrmc",
]
