"""The models of a run's folds, kept so a case can be explained by a model that never saw it.

``runs/<run_id>/fold_models/fold_<k>.pt`` holds fold ``k``'s fitted part: in finetune mode the
whole network's state, in features mode only the logistic head as an ``nn.Linear`` (scaler folded
in), because every fold shares the run's frozen backbone, which the final model ``model.pt`` holds
(same seed, same weights). ``fold_<k>.json`` beside it lists the fold's training and test cases,
so the fold that never trained on a case is found without loading torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.learning.artifacts import model_path, run_dir
from db.cases import DEFAULT_COHORT

FOLDS_DIR = "fold_models"


def fold_model_dir(run_id: str, runs_dir: str | Path | None = None) -> Path:
    """The folder of the fold models of run ``run_id``."""
    return run_dir(run_id, runs_dir) / FOLDS_DIR


def save_fold_model(
    out: Path, fold: int, *, config: dict, info: dict, train_cases, test_cases, fit
) -> Path:
    """Keep fold ``fold``'s fitted model and its case lists under ``out/fold_models``.

    Parameters
    ----------
    out : Path
        The run's folder.
    fold : int
    config, info : dict
        The run's ``RunConfig.to_dict()`` and the model's ``Net.info``.
    train_cases, test_cases : sequences of str
        The cases the fold trained on (inner validation cases included) and predicted.
    fit : core.learning.fold_fit.FoldFit
        Carries ``state`` (finetune) or ``head`` (features: weight, bias).

    Returns
    -------
    Path of the ``.pt`` file.
    """
    import torch

    folder = Path(out) / FOLDS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    saved = {"config": config, "info": info, "fold": int(fold)}
    if fit.state is not None:
        saved["state"] = fit.state
    elif fit.head is not None:
        w, b = fit.head
        saved["head"] = {
            "weight": torch.as_tensor(np.asarray(w), dtype=torch.float32),
            "bias": torch.as_tensor(np.asarray(b), dtype=torch.float32),
        }
    else:
        raise ValueError(f"fold {fold}: the fit carries no model to keep")
    path = folder / f"fold_{int(fold)}.pt"
    torch.save(saved, path)
    cases = {
        "fold": int(fold),
        "train_cases": sorted(map(str, set(train_cases))),
        "test_cases": sorted(map(str, set(test_cases))),
    }
    (folder / f"fold_{int(fold)}.json").write_text(json.dumps(cases), encoding="utf-8")
    return path


def fold_cases(run_id: str, runs_dir: str | Path | None = None) -> dict[int, dict]:
    """``{fold: {"train_cases": [...], "test_cases": [...]}}`` of the folds kept for a run."""
    out = {}
    for path in sorted(fold_model_dir(run_id, runs_dir).glob("fold_*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        for key in ("train_cases", "test_cases"):
            record[key] = [_keyed(case) for case in record[key]]
        out[int(record["fold"])] = record
    return out


def _keyed(case_id: str) -> str:
    # Runs made before cases were keyed by cohort (schema v10) listed bare patient IDs, and
    # every case a run trained on then was in the default cohort.
    return case_id if "/" in case_id else f"{DEFAULT_COHORT}/{case_id}"


def fold_of_case(run_id: str, case_id: str, runs_dir: str | Path | None = None) -> int:
    """The fold whose model predicted (and never trained on) ``case_id``.

    Raises
    ------
    FileNotFoundError
        When the run kept no fold model for that case (made before fold models were kept, or
        the case is not in the run).
    """
    for fold, record in fold_cases(run_id, runs_dir).items():
        if str(case_id) in record["test_cases"]:
            return fold
    folder = fold_model_dir(run_id, runs_dir)
    if not folder.parent.is_dir():
        raise FileNotFoundError(
            f"run {run_id} has no fold models: there is no folder {folder.parent} (the run was "
            "made under another project home, see CERVIXSCOPE_HOME and --home, or its folder was "
            "moved)"
        )
    raise FileNotFoundError(
        f"run {run_id} kept no fold model that predicted case {case_id} in {folder}: "
        "run the cross-validation again to keep its fold models"
    )


def load_fold_model(run_id: str, fold: int, *, runs_dir: str | Path | None = None):
    """Fold ``fold``'s ``Net`` (eval mode, CPU) and the run's ``RunConfig``.

    Raises
    ------
    FileNotFoundError
        If the fold model (or, in features mode, the final model holding the backbone) is absent.
    """
    import torch

    from core.learning.config import RunConfig
    from core.learning.models import build_model

    path = fold_model_dir(run_id, runs_dir) / f"fold_{int(fold)}.pt"
    if not path.exists():
        raise FileNotFoundError(f"run {run_id} has no model for fold {fold} at {path}")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    cfg = RunConfig.from_dict(saved["config"]).replace(weights="none")  # the state has them
    model, _ = build_model(cfg)
    if "state" in saved:
        model.load_state_dict(saved["state"])
    else:
        backbone = model_path(run_id, runs_dir)
        if not backbone.exists():
            raise FileNotFoundError(
                f"run {run_id}: fold {fold}'s head needs the run's backbone in {backbone}, "
                "saved with the final model once all folds are done"
            )
        model.load_state_dict(torch.load(backbone, map_location="cpu", weights_only=True)["state"])
        with torch.no_grad():
            model.head.weight.copy_(saved["head"]["weight"])
            model.head.bias.copy_(saved["head"]["bias"])
    model.info = saved.get("info", model.info)
    return model.eval(), cfg


def load_case_model(run_id: str, case_id: str, *, runs_dir: str | Path | None = None):
    """The fold model that never saw ``case_id``: ``(Net, RunConfig, fold)``."""
    fold = fold_of_case(run_id, case_id, runs_dir)
    model, cfg = load_fold_model(run_id, fold, runs_dir=runs_dir)
    return model, cfg, fold


def load_fold_ensemble(run_id: str, *, runs_dir: str | Path | None = None) -> list:
    """Every kept fold model of a run, in fold order (empty when none were kept)."""
    return [load_fold_model(run_id, f, runs_dir=runs_dir)[0] for f in fold_cases(run_id, runs_dir)]
