"""The board flow's own pieces, run one by one in a build directory by the caller's steps:

    write_design: the Amaranth top -> top.il and top.lpf|top.pcf (the platform's pin constraints)
    boards.yosys.synthesize: top.il -> top.json
    boards.nextpnr.place_and_route: top.json -> top.config|top.asc (nextpnr.log)
    pack: top.config|top.asc -> top.bit|top.bin (pack.log)

Every tool runs in the build directory with relative paths (YoWASP tools see only files under
their working directory), each with its log beside its outputs.
"""

from __future__ import annotations

from pathlib import Path

from boards.registry import Board
from boards.tools import find_tool, run_logged, tool_failure

__all__ = ["constraints_name", "pack", "routed_name", "write_design"]


def constraints_name(board: Board) -> str:
    """The pin and clock constraints file the platform writes for ``board``."""
    return "top.lpf" if board.family == "ecp5" else "top.pcf"


def routed_name(board: Board) -> str:
    """The placed and routed design nextpnr writes for ``board`` (the packer's input)."""
    return "top.config" if board.family == "ecp5" else "top.asc"


def write_design(top, *, platform, board: Board, workdir: Path) -> None:
    """Write ``top`` (an elaboratable using ``platform``'s resources) as ``top.il`` and its pin
    constraints into ``workdir`` (created if needed), removing an earlier run's products."""
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("top.bit", "top.bin", "top.config", "top.asc", "top.json"):
        (workdir / stale).unlink(missing_ok=True)
    plan = platform.prepare(top, name="top")
    for name in ("top.il", constraints_name(board)):
        (workdir / name).write_text(plan.files[name])


def pack(workdir: Path, *, board: Board) -> Path:
    """Pack the routed design in ``workdir`` into ``board``'s bitstream; it appears under its
    final name only once the packer succeeded. Raises :class:`ToolError`."""
    final = board.bitstream_name
    partial = f"{final}.partial"
    if board.family == "ecp5":
        tool = find_tool("ECPPACK")
        command = [tool, "--compress", routed_name(board), partial]
    else:
        tool = find_tool("ICEPACK")
        command = [tool, routed_name(board), partial]
    status, text = run_logged(command, cwd=workdir, log_name="pack.log")
    if status != 0:
        (workdir / partial).unlink(missing_ok=True)
        raise tool_failure(Path(tool).name, status, workdir / "pack.log", text)
    bitstream = workdir / final
    (workdir / partial).replace(bitstream)
    return bitstream
