"""report.json: one file per build directory, rewritten whole by every command.

Sections follow DESIGN.md section 6; a stage a command did not run is ``null``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["SECTIONS", "write_json_atomic", "write_report"]

SECTIONS = ("model", "quant", "hardware", "sim", "synth", "throughput", "artifacts")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_report(out_dir: Path, **sections: Any) -> Path:
    """Rewrite ``out_dir/report.json`` whole with the given sections; the others become null."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"report sections must be among {SECTIONS}, not {sorted(unknown)}")
    path = out_dir / "report.json"
    write_json_atomic(path, {name: sections.get(name) for name in SECTIONS})
    return path
