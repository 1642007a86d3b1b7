"""Fine-tuning loop for `finetune` mode, built for a small dataset on one GPU (and tolerable on CPU).

The whole training fold lives on the device as one tensor; each step indexes a batch, augments it
on the device with per-sample random flips, affine warps and intensity jitter, and runs AdamW
under a cosine schedule (bf16 autocast and channels_last on CUDA). No DataLoader, no workers.

Imbalance in finetune mode: ``balance="smote"`` and ``"weights"`` both use class-balanced
sampling (each batch drawn with probability 1/class-count per image). SMOTE on raw images would
blend two patients' anatomy into unrealistic crops; oversampling the real images with random
augmentation is the image-space equivalent. ``"none"`` shuffles plainly.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from core.learning.models import Net, trainable_parameters


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; anything else goes to ``torch.device``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"device {name!r}: expected auto, cpu, cuda, cuda:N or mps") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: CUDA is not available on this machine; use auto or cpu")
    return device


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed torch and numpy; ask torch for deterministic kernels where they exist."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def augment_batch(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample random horizontal flip, small affine (+-10 deg, 0.9-1.1 scale, +-6% shift) and
    intensity jitter (contrast 0.85-1.15, brightness +-0.05) of a (B, 1, H, W) batch in [0, 1].

    torchvision's random transforms draw one set of parameters per call; here every image
    gets its own, through one batched ``affine_grid``.
    """
    b = x.shape[0]
    dev = x.device

    def u(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(b, device=dev, generator=generator) * (hi - lo) + lo

    angle = u(-10, 10) * math.pi / 180
    scale = u(0.9, 1.1)
    flip = torch.where(torch.rand(b, device=dev, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, u(-0.06, 0.06)], dim=1),
            torch.stack([sin * flip, cos, u(-0.06, 0.06)], dim=1),
        ],
        dim=1,
    ).to(x.dtype)
    grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = nn.functional.grid_sample(x, grid, padding_mode="border", align_corners=False)
    contrast = u(0.85, 1.15).view(b, 1, 1, 1).to(x.dtype)
    brightness = u(-0.05, 0.05).view(b, 1, 1, 1).to(x.dtype)
    mean = out.mean(dim=(2, 3), keepdim=True)
    return ((out - mean) * contrast + mean + brightness).clamp(0, 1)


@dataclass
class FitResult:
    epochs_run: int = 0
    best_epoch: int = -1
    best_val_loss: float = float("nan")
    images_seen: int = 0
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.images_seen / self.seconds if self.seconds > 0 else float("nan")


def _to_device_tensor(crops: np.ndarray, device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(crops, dtype=np.float32)).unsqueeze(1).to(device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def finetune(
    model: Net,
    x_train: np.ndarray,
    y_train: np.ndarray,
    cfg,
    *,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    device: torch.device | None = None,
    progress=None,
) -> FitResult:
    """Train ``model`` in place on (n, h, w) crops with labels; early-stop on the validation set.

    Parameters
    ----------
    model : Net
    x_train, y_train : arrays
        The training fold only (the caller keeps test folds out).
    cfg : RunConfig
        Uses ``epochs, batch_size, lr, weight_decay, patience, balance, finetune_scope, augment,
        amp, channels_last, compile, seed``.
    x_val, y_val : arrays, optional
        Inner validation split of the training fold; the best epoch's weights are restored.
    device : torch.device, optional
        Default ``resolve_device(cfg.device)``.
    progress : callable(epoch, epochs, train_loss), optional

    Returns
    -------
    FitResult
    """
    device = device or resolve_device(cfg.device)
    loop = _TrainingLoop(model, x_train, y_train, cfg, device)
    val = _val_tensors(x_val, y_val, device)
    result = FitResult()
    best_state, bad_epochs = None, 0
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        record = {"epoch": epoch, "train_loss": loop.epoch(result)}
        if val is not None:
            record["val_loss"] = _eval_loss(model, *val, cuda=loop.cuda and cfg.amp)
            if not record["val_loss"] >= result.best_val_loss:  # also true while best is nan
                result.best_val_loss, result.best_epoch = record["val_loss"], epoch
                best_state, bad_epochs = copy.deepcopy(model.state_dict()), 0
            else:
                bad_epochs += 1
        result.history.append(record)
        result.epochs_run = epoch + 1
        if progress is not None:
            progress(epoch + 1, cfg.epochs, record["train_loss"])
        if val is not None and bad_epochs >= cfg.patience:
            break
    if loop.cuda:
        torch.cuda.synchronize()
    result.seconds = time.perf_counter() - start
    if best_state is not None:
        model.load_state_dict(best_state)
    return result


def _val_tensors(x_val, y_val, device) -> tuple[torch.Tensor, torch.Tensor] | None:
    if x_val is None or len(x_val) == 0:
        return None
    return _to_device_tensor(x_val, device), torch.as_tensor(y_val, dtype=torch.long, device=device)


class _TrainingLoop:
    """The training fold on the device, the optimiser, the schedule and the sampler of ``finetune``."""

    def __init__(self, model: Net, x_train: np.ndarray, y_train: np.ndarray, cfg, device):
        self.model, self.cfg, self.device = model, cfg, device
        self.cuda = device.type == "cuda"
        model.to(device)
        if self.cuda and cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        params = trainable_parameters(model, cfg.finetune_scope)
        self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.x = _to_device_tensor(x_train, device)
        self.y = torch.as_tensor(y_train, dtype=torch.long, device=device)
        self.steps = max(1, math.ceil(len(self.y) / cfg.batch_size))
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.opt, T_max=cfg.epochs * self.steps
        )
        counts = torch.bincount(self.y, minlength=model.head.out_features).clamp(min=1).float()
        balanced = cfg.balance in ("smote", "weights")
        self.sample_w = (1.0 / counts)[self.y] if balanced else None
        self.gen = torch.Generator(device=device).manual_seed(int(cfg.seed))
        self.step_model = torch.compile(model) if cfg.compile else model
        self.loss_fn = nn.CrossEntropyLoss()

    def epoch(self, result: FitResult) -> float:
        """One pass over the training fold; returns its mean training loss."""
        cfg, n = self.cfg, len(self.y)
        self.model.train()
        if cfg.finetune_scope != "all":
            _freeze_frozen_batchnorm(self.model)
        if self.sample_w is not None:
            order = torch.multinomial(self.sample_w, n, replacement=True, generator=self.gen)
        else:
            order = torch.randperm(n, device=self.device, generator=self.gen)
        total = torch.zeros((), device=self.device)  # summed on the device: no host sync per step
        for s in range(self.steps):
            idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            xb = self.x[idx]
            if cfg.augment:
                xb = augment_batch(xb, self.gen)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda and cfg.amp):
                loss = self.loss_fn(self.step_model(xb), self.y[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            total += loss.detach().float() * len(idx)
            result.images_seen += len(idx)
        return float(total) / n


def _freeze_frozen_batchnorm(model: Net) -> None:
    """Frozen BN layers keep their ImageNet statistics."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d) and not any(
            p.requires_grad for p in module.parameters()
        ):
            module.eval()


@torch.no_grad()
def _eval_loss(model: Net, x: torch.Tensor, y: torch.Tensor, *, cuda: bool) -> float:
    model.eval()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        logits = torch.cat([model(x[i : i + 256]) for i in range(0, len(x), 256)])
    return float(nn.functional.cross_entropy(logits.float(), y))


@torch.inference_mode()
def predict_proba(
    model: Net, crops: np.ndarray, *, device: torch.device | None = None, batch_size: int = 256
) -> np.ndarray:
    """Softmax class probabilities (n, n_classes) of (n, h, w) crops, in eval mode."""
    device = device or next(model.parameters()).device
    model.to(device).eval()
    cuda = device.type == "cuda"
    out = []
    for i in range(0, len(crops), batch_size):
        xb = _to_device_tensor(crops[i : i + batch_size], device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            out.append(torch.softmax(model(xb).float(), dim=1).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def bare_loop_images_per_second(
    model: Net, *, size: int, batch_size: int, steps: int, device: torch.device, amp: bool
) -> float:
    """The limit for ``finetune``: forward/backward/step on one random batch, nothing else."""
    cuda = device.type == "cuda"
    model.to(device).train()
    if cuda:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.rand(batch_size, 1, size, size, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, model.head.out_features, (batch_size,), device=device)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and amp):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up: kernels and allocator
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)
