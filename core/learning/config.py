"""One small dataclass that says how a run was trained; saved with every run (config.json, DB)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# The architectures of core.learning.models.ARCHITECTURES, named here without importing torch, so
# the dashboard and the CLI's help can list them.
MODELS = ("resnet18", "resnet34", "resnet50", "vgg16_bn", "cnn")
MODES = ("features", "finetune")
BALANCES = ("smote", "weights", "none")
CHANNEL_POLICIES = ("sum_rgb", "repeat")
FINETUNE_SCOPES = ("all", "last_block")
HEAD_SOLVERS = ("pca-newton", "newton-cg")
# Settings that may differ between the jobs merged into one run: which folds each computes, where,
# how it is compiled, and notes (the model's info is filled in by each job).
PER_JOB_FIELDS = ("folds", "device", "compile", "extra")


@dataclass
class RunConfig:
    """Everything that decides a run's numbers, besides the data (see ``CropSet.data_hash``).

    Any number on the dashboard traces back to one of these, its seed and its folds.
    """

    model: str = "resnet18"  # one of MODELS
    mode: str = "features"  # "features" (frozen embeddings + logistic head, CPU) | "finetune" (GPU)
    weights: str = "auto"  # auto | imagenet | none | PATH to a state_dict
    balance: str = "smote"  # smote | weights | none; applied inside each training fold only
    n_folds: int = 10
    folds: list[int] | None = (
        None  # subset of folds to run (merged in the DB by run_id); None = all
    )
    seed: int = 0
    crop_size: int = 100  # size of the ingested crops
    # Crops are fed at their native size by default (no resize): ImageNet CNNs are fully
    # convolutional + global pooling, and upsampling 100 -> 224 costs 5x compute for no new pixels.
    input_size: int | None = None  # None = crop_size; else bilinear resize before the network
    # One MRI channel into a 3-channel ImageNet stem: sum the first conv's RGB filters (fastai),
    # which equals feeding the grey image as R=G=B, at a third of the first layer's cost.
    channel_policy: str = "sum_rgb"  # sum_rgb | repeat
    # ImageNet mean/std applied to the grey channel as if R=G=B (sum_rgb folds it into one channel).
    normalize: str = "imagenet"  # imagenet | none
    cnn_width: int = 16  # base channel width of the small CNN ("cnn"); doubles per block
    # features mode
    embed_batch_size: int = 64  # fastest on 2 CPU cores (measured 32-256); raise on a GPU
    head_c: float = 1.0  # inverse L2 strength of the logistic-regression head (standardised input)
    # pca-newton: PCA to head_dim components inside each training fold, then Newton-Cholesky, in
    # time linear in the cases; newton-cg: the head before issue 14, on all features, whose time
    # grows ~N^1.4-1.85 (see core.learning.heads)
    head_solver: str = "pca-newton"  # pca-newton | newton-cg
    head_dim: int = 64  # pca-newton's components (at most the features and training rows)
    smote_k: int = 5  # reduced per fold when the training fold has fewer minority samples
    # finetune mode
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 5  # early stopping on the inner validation split of the training fold
    val_fraction: float = 0.15  # inner validation split (by patient) of each training fold
    finetune_scope: str = "all"  # all | last_block (+ head)
    augment: bool = True  # per-sample flips, small affine, intensity jitter, on the device
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    compile: bool = False  # torch.compile the model in finetune mode (CUDA only pays off)
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU
    channels_last: bool = True  # on CUDA only
    deterministic: bool = True  # torch.use_deterministic_algorithms(warn_only=True)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes, e.g. comparison role

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field, its value and what is allowed."""
        choices = {
            "model": MODELS,
            "mode": MODES,
            "balance": BALANCES,
            "channel_policy": CHANNEL_POLICIES,
            "finetune_scope": FINETUNE_SCOPES,
            "normalize": ("imagenet", "none"),
            "head_solver": HEAD_SOLVERS,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(
                    f"RunConfig.{name}={value!r}: expected one of {', '.join(allowed)}"
                )
        if self.n_folds < 2:
            raise ValueError(f"RunConfig.n_folds={self.n_folds}: need at least 2 folds")
        if self.folds is not None:
            self.folds = sorted({int(f) for f in self.folds})
            bad = [f for f in self.folds if not 0 <= f < self.n_folds]
            if bad or not self.folds:
                raise ValueError(
                    f"RunConfig.folds={self.folds}: expected fold numbers in 0..{self.n_folds - 1}"
                )
        for name in (
            "epochs",
            "batch_size",
            "embed_batch_size",
            "crop_size",
            "smote_k",
            "cnn_width",
            "head_dim",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"RunConfig.{name}={getattr(self, name)}: must be >= 1")
        if self.input_size is not None and self.input_size < 16:
            raise ValueError(f"RunConfig.input_size={self.input_size}: must be >= 16 or None")
        if not 0 < self.val_fraction < 0.5:
            raise ValueError(f"RunConfig.val_fraction={self.val_fraction}: must lie in (0, 0.5)")

    @property
    def effective_input_size(self) -> int:
        return self.input_size or self.crop_size

    def fold_list(self) -> list[int]:
        """The folds this run computes."""
        return list(self.folds) if self.folds is not None else list(range(self.n_folds))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from a dict; unknown keys are an error so a typo never silently uses a default."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown RunConfig field(s) {unknown}: expected some of {sorted(known)}"
            )
        return cls(**data)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)
