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
