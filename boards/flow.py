"""From an Amaranth top level to a bitstream: Yosys, nextpnr and the packer, run in one directory.

The board's Amaranth platform writes the design (RTLIL) and its pin constraints; every tool then
runs in the build directory with relative paths (YoWASP tools see only files under their working
directory), each with its log beside its outputs:

    top.il, top.lpf|top.pcf -> Yosys (top.ys, yosys.log) -> top.json
        -> nextpnr (nextpnr.log, nextpnr-report.json) -> top.config|top.asc
        -> ecppack|icepack -> top.bit|top.bin

nextpnr runs router1 (see ``DEFAULT_ROUTER``), always with ``--timing-allow-fail`` so that a
design that misses its clock still reports what it reached; :class:`FlowResult` says whether
timing was met and the caller decides. The bitstream is written under a temporary name and
renamed once the packer succeeds.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from boards.nextpnr import NextpnrReport, ecp5_device_flag, parse_nextpnr_log
from boards.registry import Board
from boards.synth_stats import parse_stat, synth_command
from boards.tools import ToolError, find_tool

__all__ = ["FlowResult", "run_flow", "synthesize"]

LOG_TAIL_LINES = 20
# nextpnr's router: on the digits DeBut core at 28 DSPs on the LFE5U-85F (12.7k LUT4, 14k FF),
# router1 finished in 132 s while router2 stalled at about 1,100 overused wires after 39
# iterations (over 20 minutes); router1 is also nextpnr's own default for ECP5
DEFAULT_ROUTER = "router1"
QUIET_S = 60.0  # a tool silent this long gets a "still ..." progress line

# nextpnr log lines that start a phase worth telling the user about
_PHASES = [
    (re.compile(r"^Info: Packing IOs"), "packing"),
    (re.compile(r"^Info: Creating initial (analytic )?placement"), "placing"),
    (re.compile(r"^Info: Running simulated annealing placer"), "refining the placement"),
    (re.compile(r"^Info: (Routing\.\.|Running router2)"), "routing"),
]
_FMAX_LINE = re.compile(r"^(?:Info|Warning): Max frequency for clock .*$")


@dataclass
class FlowResult:
    """What a flow run produced: the bitstream (None when packing was skipped), Yosys's cell
    counts, nextpnr's report, the seconds of each step, and the LUT mapper Yosys used."""

    workdir: Path
    bitstream: Path | None
    cells: dict[str, int]
    nextpnr: NextpnrReport
    seconds: dict[str, float] = field(default_factory=dict)
    mapper: str = "abc9"


def _run_logged(
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


def _failure(tool: str, status: int, log_path: Path, text: str) -> ToolError:
    lines = text.splitlines()
    errors = [line for line in lines if line.startswith("ERROR")]
    headline = f": {errors[0]}" if errors else ""
    tail = "\n".join(lines[-LOG_TAIL_LINES:])
    return ToolError(
        f"{tool} failed (exit status {status}){headline}\nlast lines of {log_path}:\n{tail}"
    )


def _synth_script(
    family: str, top: str, source: str, output: str, mapper: str, extra: str, options: str
) -> str:
    read = f"read_rtlil {source}" if source.endswith(".il") else f"read_verilog -sv {source}"
    synth = synth_command(family, top, mapper, options)
    return f"{read}\n{synth}\n{extra}stat\nwrite_json {output}\n"


def synthesize(
    workdir: Path,
    *,
    family: str,
    top: str = "top",
    source: str = "top.il",
    output: str = "top.json",
    extra: str = "",
    options: str = "",
    log_name: str = "yosys.log",
) -> tuple[dict[str, int], str]:
    """Synthesise ``source`` (RTLIL or Verilog, in ``workdir``) for ``family`` into ``output``
    (Yosys JSON). ``extra`` is Yosys script run after synthesis (e.g. writing a netlist);
    ``options`` are added to the ``synth_*`` command (e.g. ``-nobram``). Returns the cell
    counts of the final ``stat`` and the LUT mapper used: ABC9, or classic ABC when Yosys
    0.70's ABC9 hits one of its assertions."""
    yosys = find_tool("YOSYS")
    mappers = ["abc9", "abc"] if family == "ecp5" else ["abc9"]
    for mapper in mappers:
        script = f"{Path(log_name).stem}.ys"
        (workdir / script).write_text(
            _synth_script(family, top, source, output, mapper, extra, options)
        )
        status, _ = _run_logged(
            [yosys, "-q", "-l", log_name, "-s", script],
            cwd=workdir,
            log_name=f"{Path(log_name).stem}.out",
        )
        text = (workdir / log_name).read_text(errors="replace")
        if status == 0:
            return parse_stat(text), mapper
        if mapper == "abc9" and "abc9" in text and "Assert" in text and len(mappers) > 1:
            continue
        raise _failure("Yosys", status, workdir / log_name, text)
    raise AssertionError("unreachable")


def _nextpnr_command(board: Board, frequency_mhz: float, seed: int, router: str) -> list[str]:
    if board.family == "ecp5":
        return [
            find_tool("NEXTPNR_ECP5"),
            ecp5_device_flag(board.device),
            "--package",
            board.package,
            "--speed",
            "6",
            "--lpf",
            "top.lpf",
            "--textcfg",
            "top.config",
            "--router",
            router,
            "--json",
            "top.json",
            "--freq",
            repr(float(frequency_mhz)),
            "--seed",
            str(seed),
            "--timing-allow-fail",
            "--report",
            "nextpnr-report.json",
        ]
    return [
        find_tool("NEXTPNR_ICE40"),
        f"--{board.device}",
        "--package",
        board.package,
        "--pcf",
        "top.pcf",
        "--asc",
        "top.asc",
        "--json",
        "top.json",
        "--freq",
        repr(float(frequency_mhz)),
        "--seed",
        str(seed),
        "--timing-allow-fail",
        "--report",
        "nextpnr-report.json",
    ]


def run_flow(
    top,
    *,
    platform,
    board: Board,
    workdir: Path,
    frequency_mhz: float,
    seed: int = 1,
    router: str = DEFAULT_ROUTER,
    pack: Callable[[NextpnrReport], bool] = lambda report: report.all_timing_met,
    progress: Callable[[str], None] = print,
) -> FlowResult:
    """Synthesise, place and route ``top`` for ``board`` in ``workdir`` (created if needed), and
    pack the bitstream when ``pack(report)`` says so (by default: when every clock met timing).

    ``platform`` is the board's Amaranth platform instance (it writes the RTLIL and the pin
    constraints). ``frequency_mhz`` is the target of every clock nextpnr cannot derive.
    Progress lines (each step and nextpnr's phases, with elapsed seconds) go to ``progress``.
    Raises :class:`ToolError` when a tool is missing or fails.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    constraints = "top.lpf" if board.family == "ecp5" else "top.pcf"
    for stale in ("top.bit", "top.bin", "top.config", "top.asc", "top.json"):
        (workdir / stale).unlink(missing_ok=True)

    start = time.perf_counter()
    progress("[elaborate] writing the design and its pin constraints ...")
    plan = platform.prepare(top, name="top")
    for name in ("top.il", constraints):
        (workdir / name).write_text(plan.files[name])
    seconds["elaborate"] = time.perf_counter() - start
    progress(f"[elaborate] done in {seconds['elaborate']:.1f} s")

    start = time.perf_counter()
    progress(f"[synth] Yosys synth_{board.family} ...")
    cells, mapper = synthesize(workdir, family=board.family)
    seconds["synth"] = time.perf_counter() - start
    note = "" if mapper == "abc9" else " (classic ABC: ABC9 hit an assertion)"
    progress(f"[synth] done in {seconds['synth']:.1f} s{note}")

    start = time.perf_counter()
    progress(f"[pnr] nextpnr for {board.device} at {frequency_mhz:g} MHz (seed {seed}) ...")
    seen: set[str] = set()

    def on_line(line: str) -> None:
        for pattern, phase in _PHASES:
            if phase not in seen and pattern.match(line):
                seen.add(phase)
                progress(f"[pnr] {phase} ({time.perf_counter() - start:.0f} s)")
        if _FMAX_LINE.match(line):
            progress(f"[pnr] {line.split(': ', 1)[1]} ({time.perf_counter() - start:.0f} s)")

    def on_quiet(elapsed: float) -> None:
        phase = max(seen, key=[p for _, p in _PHASES].index) if seen else "starting"
        progress(f"[pnr] still {phase} ({elapsed:.0f} s)")

    command = _nextpnr_command(board, frequency_mhz, seed, router)
    status, text = _run_logged(
        command, cwd=workdir, log_name="nextpnr.log", on_line=on_line, on_quiet=on_quiet
    )
    seconds["pnr"] = time.perf_counter() - start
    if status != 0:
        raise _failure("nextpnr", status, workdir / "nextpnr.log", text)
    report = parse_nextpnr_log(text)
    progress(f"[pnr] done in {seconds['pnr']:.1f} s")

    bitstream = None
    if pack(report):
        start = time.perf_counter()
        progress("[pack] ...")
        if board.family == "ecp5":
            tool, source, final = find_tool("ECPPACK"), "top.config", "top.bit"
            command = [tool, "--compress", source, f"{final}.partial"]
        else:
            tool, source, final = find_tool("ICEPACK"), "top.asc", "top.bin"
            command = [tool, source, f"{final}.partial"]
        status, text = _run_logged(command, cwd=workdir, log_name="pack.log")
        if status != 0:
            (workdir / f"{final}.partial").unlink(missing_ok=True)
            raise _failure(Path(tool).name, status, workdir / "pack.log", text)
        bitstream = workdir / final
        (workdir / f"{final}.partial").replace(bitstream)
        seconds["pack"] = time.perf_counter() - start
        progress(f"[pack] done in {seconds['pack']:.1f} s")
    return FlowResult(workdir, bitstream, cells, report, seconds, mapper)
