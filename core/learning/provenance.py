"""What produced a run: the code's version and the versions of the packages that do the maths."""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

RECORDED_PACKAGES = ("torch", "torchvision", "numpy", "scikit-learn", "imbalanced-learn", "pydicom")


def code_version() -> str:
    """The git commit of the working tree, else the installed package version.

    Returns
    -------
    str
        A commit hash, ``"cervixscope <version>"``, or ``"unknown"``.
    """
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        if out.returncode == 0:
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return "cervixscope " + version("cervixscope")
    except PackageNotFoundError:
        return "unknown"


def package_versions() -> dict[str, str]:
    """``{package: version}`` of the packages in ``RECORDED_PACKAGES`` (``"absent"`` if missing)."""
    out = {}
    for name in RECORDED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


RANDOM_WEIGHTS = "random initialisation"
FROM_SCRATCH = "none (trained from scratch)"


def weights_used(config: dict | None, requested: str | None = None) -> str:
    """What a run's backbone really started from, in words, from its recorded model info.

    ``--weights auto`` falls back to random initialisation offline; the requested value alone
    would hide that, so the model's own record (``config.extra.model_info.weights_used``) wins.

    Returns
    -------
    str
        ``"random initialisation"`` (a pretrainable backbone that got no pretrained weights),
        ``"none (trained from scratch)"``, ``"ImageNet"``, a weights file path, or the requested value
        (``"requested: <value>"``) for a run that never recorded its model.
    """
    info = ((config or {}).get("extra") or {}).get("model_info") or {}
    used = info.get("weights_used")
    if used == "random" and info.get("channel_policy") == "native_1ch":
        return FROM_SCRATCH  # a model without pretrained weights (the small CNN)
    if used == "random":
        return RANDOM_WEIGHTS
    if used == "imagenet":
        return "ImageNet"
    if used:
        return str(used)
    return f"requested: {requested}" if requested else ""


def warnings_text(warnings: list[str] | None) -> str:
    """A run's warnings spelled out, one after another (blank when there are none)."""
    return "; ".join(dict.fromkeys(str(w) for w in warnings or []))


def synthetic_text(n_cases: int, n_synthetic: int) -> str:
    """``"synthetic (all 60 cases)"``, ``"12 of 60 cases synthetic"`` or ``""`` (real data)."""
    n_cases, n_synthetic = int(n_cases or 0), int(n_synthetic or 0)
    if n_synthetic == 0:
        return ""
    if n_synthetic == n_cases:
        return f"synthetic (all {n_cases} cases)"
    return f"{n_synthetic} of {n_cases} cases synthetic"
