"""Part (b): wall time of features-mode k-fold CV end to end (embed every crop once, then per
fold a standardised logistic head) against the obvious way: a torch DataLoader with PIL
transforms that re-extracts every image's features inside every fold.

Same folds, same head, same backbone and seed, so the AUCs should agree (+-0.01 AUC). The
speed-up has a ceiling by construction: with E one embedding pass and H the ten heads, the
obvious way costs about 10E + H against our E + H, so at most (10E + H) / (E + H) (reported as
``cv_speedup_ceiling``).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from core.bench.scaling import case_auc, features_cv_ours
from core.data.dataset import CropSet
from core.learning.config import RunConfig


def features_cv_obvious(
    crops: CropSet, cfg: RunConfig, *, device=None, batch_size: int = 32
) -> tuple[np.ndarray, float]:
    """The obvious implementation (for comparison only): per fold, a DataLoader of PIL images
    through torchvision transforms re-extracts features of the training and the test images."""
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    from core.learning.folds import make_folds
    from core.learning.heads import LinearHead
    from core.learning.models import build_model
    from core.learning.training import resolve_device, seed_everything

    class Crops(Dataset):
        def __init__(self, index):
            self.index = index
            self.tf = transforms.Compose([transforms.ToTensor()])

        def __len__(self):
            return len(self.index)

        def __getitem__(self, i):
            image = Image.fromarray(crops.crops[self.index[i]])  # mode "F": no precision lost
            return self.tf(image), int(crops.labels[self.index[i]])

    def extract(model, index):
        feats = []
        with torch.no_grad():
            for xb, _ in DataLoader(Crops(index), batch_size=batch_size, shuffle=False):
                feats.append(model.embed(xb.to(device)).cpu().numpy())
        return np.concatenate(feats)

    device = device or resolve_device(cfg.device)
    start = time.perf_counter()
    seed_everything(cfg.seed)
    model, _ = build_model(cfg)
    model = model.to(device).eval()
    folds = make_folds(crops.case_ids, crops.labels, n_splits=cfg.n_folds, seed=cfg.seed)
    proba = np.zeros((crops.n_images, 3))
    for fold in range(cfg.n_folds):
        train, test = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        head = LinearHead(cfg, seed=cfg.seed * 1000 + fold)
        head.fit(extract(model, train), crops.labels[train])
        proba[test] = head.predict_proba(extract(model, test))
    return proba, time.perf_counter() - start


def bench_features_cv(crops: CropSet, cfg: RunConfig, device) -> dict:
    """Part (b): wall time and case-level AUC of our features CV and of the obvious one."""
    timings: dict = {}
    p_ours, t_ours = features_cv_ours(crops, cfg, device=device, timings=timings)
    p_obv, t_obv = features_cv_obvious(crops, cfg, device=device)
    embed, heads = timings["embed_seconds"], timings["heads_seconds"]
    return {
        "n_folds": cfg.n_folds,
        "cv_seconds_ours": t_ours,
        "cv_seconds_obvious": t_obv,
        "cv_speedup": t_obv / t_ours,
        "cv_speedup_ceiling": (cfg.n_folds * embed + heads) / (embed + heads),
        "auc_ours": case_auc(crops, p_ours),
        "auc_obvious": case_auc(crops, p_obv),
    }
