"""Model comparison (the paper's Table 1 and three-model ROC): several models, identical folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.data.dataset import CropSet
from core.learning.config import RunConfig
from db.clock import stamped_id

DEFAULT_MODELS = ("cnn", "vgg16_bn", "resnet18")

# Per-model settings of the CPU demo (`make demo`, 2 cores, <= 3 minutes in all). The CNN has no
# pretrained weights, so it is trained from scratch in a short schedule (3 epochs per fold), at
# 48x48 and base width 8 (~4x cheaper than 64x64 at width 16, measured); VGG16-BN costs ~3 GFLOPs per 100x100 crop (18 crops/s on 2 cores, measured), so its
# embeddings are taken at 64x64 (46 crops/s). Both are documented resizes via input_size.
DEMO_OVERRIDES: dict[str, dict] = {
    "cnn": {
        "mode": "finetune",
        "epochs": 3,
        "batch_size": 128,
        "lr": 3e-3,
        "patience": 2,
        "input_size": 48,
        "cnn_width": 8,
    },
    "vgg16_bn": {"input_size": 64},
}
# On a GPU the same comparison fine-tunes every model with the full schedule.
GPU_OVERRIDES: dict[str, dict] = {
    "cnn": {"mode": "finetune"},
    "vgg16_bn": {"mode": "finetune"},
    "resnet18": {"mode": "finetune"},
}


def new_comparison_id() -> str:
    return stamped_id("c")


def comparison_configs(
    models, base_cfg: RunConfig, overrides: dict[str, dict] | None = None
) -> list[RunConfig]:
    """One config per model: ``base_cfg`` with ``model`` and that model's overrides.

    Fields that decide the folds (``n_folds``, ``seed``, ``folds``) may not be overridden, so
    every model sees the same splits.
    """
    overrides = overrides or {}
    configs = []
    for model in models:
        change = dict(overrides.get(model, {}))
        fixed = {"n_folds", "seed", "folds"} & set(change)
        if fixed:
            raise ValueError(
                f"override of {model} changes {sorted(fixed)}: models of one comparison must "
                "share folds and seed"
            )
        configs.append(base_cfg.replace(model=model, **change))
    return configs


def run_comparison(
    crops: CropSet,
    models=DEFAULT_MODELS,
    base_cfg: RunConfig | None = None,
    *,
    conn,
    overrides: dict[str, dict] | None = None,
    comparison_id: str | None = None,
    progress=None,
    runs_dir: str | Path | None = None,
    cache_dir=None,
    executor=None,
    repeats: int = 1,
) -> list[str]:
    """Cross-validate several models on the same patient-grouped folds.

    Parameters
    ----------
    crops : CropSet
    models : sequence of str
        Keys of ``core.learning.models.ARCHITECTURES``; default CNN, VGG16-BN, ResNet-18.
    base_cfg : RunConfig, optional
        Shared settings (seed, folds, balance, ...); default ``RunConfig()``.
    conn : sqlite_utils.Database
    overrides : dict, optional
        Per-model changes, e.g. ``DEMO_OVERRIDES``.
    comparison_id : str, optional
        Stored on every run; default a new id.
    progress : callable(done, total, message), optional
        Passed to each ``run_cv``.
    executor : LocalExecutor or RayExecutor, optional
        Where the folds are computed (``core.learning.executors``); with Ray every (model, fold,
        seed) of the comparison is one task, all submitted at once. Default here, in order.
    repeats : int, default 1
        Repeated cross-validation: the comparison ``repeats`` times with fold seeds ``seed``,
        ``seed + 1``, ...; each repeat has its own comparison id, each model one repeat group.

    Returns
    -------
    list of str
        Run ids, in the order of ``models`` (repeat by repeat).
    """
    from core.learning.cv import run_cvs
    from core.learning.folds import make_folds
    from core.learning.repeats import repeat_plan

    base_cfg = base_cfg or RunConfig()
    configs = comparison_configs(models, base_cfg, overrides)
    # Fail before any training if the folds are impossible (e.g. too few ASC cases).
    make_folds(crops.case_ids, crops.labels, n_splits=base_cfg.n_folds, seed=base_cfg.seed)
    if repeats == 1:
        comparison_id = comparison_id or new_comparison_id()
    plan = repeat_plan(
        configs, repeats, comparison_id=comparison_id, new_comparison=new_comparison_id
    )
    return run_cvs(
        crops, plan, conn=conn, progress=progress, runs_dir=runs_dir, cache_dir=cache_dir,
        executor=executor,
    )  # fmt: skip


def comparison_table(conn, run_ids, *, seed: int = 0, n_boot: int = 1000):
    """One row per run: macro/weighted metrics and per-class AUC with 95% CIs (Table 1).

    Columns ``run_id, model, scope, metric, value, ci_low, ci_high`` from
    ``core.statistics.metrics.classification_table`` on each run's case-level out-of-fold predictions.
    """
    import pandas as pd

    import db
    from core.learning.summary import run_summary

    frames = []
    oof = db.predictions_frame(conn, list(run_ids))
    for run_id, group in oof.groupby("run_id", sort=False):
        table = run_summary(group, seed=seed, n_boot=n_boot)
        table.insert(0, "model", group["model"].iloc[0])
        table.insert(0, "run_id", run_id)
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def same_splits(conn, run_ids) -> bool:
    """Whether the runs put every case in the same fold (the comparison's guarantee)."""
    import db

    oof = db.predictions_frame(conn, list(run_ids))
    wide = oof.pivot(index="case_id", columns="run_id", values="fold")
    return bool(np.all(wide.nunique(axis=1) == 1))
