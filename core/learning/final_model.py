"""The final model of a run: trained on all data once its folds are done, saved, and loaded back.

``runs/<run_id>/model.pt`` holds one ``core.learning.models.Net`` state dict whose linear head is the
fitted classifier (in features mode the logistic head with its scaler folded in), plus the run's
``RunConfig``; ``load_run_model`` rebuilds it without any network access.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.data.dataset import CropSet
from core.learning.artifacts import MODEL_FILE, model_path
from core.learning.config import RunConfig
from core.learning.folds import inner_split
from core.learning.heads import LinearHead
from core.learning.models import Net, build_model
from core.learning.training import finetune, resolve_device, seed_everything


def train_final_model(
    crops: CropSet, cfg: RunConfig, *, run_dir: str | Path, embeddings: np.ndarray | None = None
) -> Path:
    """Fit ``cfg``'s model on every image of ``crops`` and save it as ``run_dir/model.pt``.

    Parameters
    ----------
    crops : CropSet
    cfg : RunConfig
    run_dir : path
    embeddings : array, optional
        Features mode: the embeddings of ``crops`` already computed by the run.

    Returns
    -------
    Path of the saved file.
    """
    seed_everything(cfg.seed, deterministic=cfg.deterministic)
    model, _ = build_model(cfg)  # same seed as the run: random-init backbones match its embeddings
    if cfg.mode == "features":
        _fit_head(model, crops, cfg, embeddings)
    else:
        val = inner_split(crops.case_ids, crops.labels, fraction=cfg.val_fraction, seed=cfg.seed)
        finetune(
            model,
            crops.crops[~val],
            crops.labels[~val],
            cfg,
            x_val=crops.crops[val],
            y_val=crops.labels[val],
            device=resolve_device(cfg.device),
        )
    path = Path(run_dir) / MODEL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"config": cfg.to_dict(), "info": model.info, "state": model.cpu().state_dict()}, path
    )
    return path


def _fit_head(model: Net, crops: CropSet, cfg: RunConfig, embeddings: np.ndarray | None) -> None:
    """Fit the logistic head on all embeddings and write it into ``model.head``."""
    if embeddings is None:
        from core.learning.features import embed_cropset

        embeddings, _ = embed_cropset(crops, model, cfg)
    head = LinearHead(cfg, seed=cfg.seed).fit(embeddings, crops.labels)
    w, b = head.as_linear()
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(w).float())
        model.head.bias.copy_(torch.from_numpy(b).float())


def _why_missing(path: Path) -> str:
    """The true reason a run's model file is absent, from what is on disk."""
    if path.parent.is_dir():
        return "its folder is there without one (a final model is saved once every fold is done)"
    return (
        f"there is no folder {path.parent} (the run was made under another project home, "
        "see CERVIXSCOPE_HOME and --home, or its folder was moved)"
    )


def load_run_model(run_id: str, *, runs_dir: str | Path | None = None) -> tuple[Net, RunConfig]:
    """The final ``Net`` of a run (eval mode, CPU) and its ``RunConfig``.

    Raises
    ------
    FileNotFoundError
        If the run has no saved final model (not finished, or trained elsewhere).
    """
    path = model_path(run_id, runs_dir)
    if not path.exists():
        raise FileNotFoundError(f"run {run_id} has no final model at {path}: {_why_missing(path)}")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    cfg = RunConfig.from_dict(saved["config"]).replace(weights="none")  # the state has them
    model, _ = build_model(cfg)
    model.load_state_dict(saved["state"])
    model.info = saved.get("info", model.info)
    return model.eval(), cfg
