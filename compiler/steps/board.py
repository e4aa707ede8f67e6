"""Steps on the board: the board top around the core (PLL, UART host link with its self-test
ROM, LEDs), Yosys, nextpnr, the post-synthesis check of the core's netlist and the packer.

They work in ``DIR/bitstream/``; only ``pack`` puts a bitstream into ``DIR``, after every check
passed. A design that misses its clock or differs from the golden model leaves none.
"""

from __future__ import annotations

import os
import shutil

from boards.flow import constraints_name, routed_name, write_design
from boards.flow import pack as pack_bitstream
from boards.harness import BoardTop, clock_plan
from boards.link.protocol import DEFAULT_BAUD, selftest_checksum
from boards.nextpnr import (
    critical_path,
    overfull,
    parse_nextpnr_log,
    phase_reporter,
    place_and_route,
)
from boards.tools import tool_failure
from boards.yosys import synthesize
from compiler.console import table
from compiler.golden import run_integer
from compiler.lower import CORE_NAME
from compiler.options import AUTO_FIRST_MHZ, AUTO_MARGIN, AUTO_PASSES
from compiler.steps.core import selftest_vectors
from compiler.steps.state import BoardBuild, BuildState
from compiler.verification import check_core, input_vectors
from debut.errors import FitError, TimingError

__all__ = [
    "AUTO_FIRST_MHZ",
    "AUTO_MARGIN",
    "AUTO_PASSES",
    "harness",
    "netlist",
    "netlist_simulator",
    "pack",
    "pnr",
    "synth",
]


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


def harness(state: BuildState) -> None:
    """The board top: PLL, UART host link with the self-test ROM, the core, LEDs; written as
    RTLIL with the board's pin constraints. With the automatic clock, the first target is
    ``AUTO_FIRST_MHZ``."""
    from compiler.artifacts import weights_hash

    options = state.options
    board = options.target_board
    graph = state.quantized.graph
    auto = options.clock_mhz is None and board.default_clock_mhz is None
    if auto:
        requested = AUTO_FIRST_MHZ
    else:
        requested = board.default_clock_mhz if options.clock_mhz is None else options.clock_mhz
    baud = DEFAULT_BAUD if options.baud is None else options.baud
    selftest = selftest_vectors(state)
    checksum = selftest_checksum(run_integer(graph, selftest).output, graph.output_format)
    design_id = int(weights_hash(graph)[:8], 16)
    build = BoardBuild(
        board,
        clock_plan(board, requested),
        baud,
        selftest,
        checksum,
        design_id,
        state.out_dir / "bitstream",
        auto_clock=auto,
    )
    state.board_build = build
    _write_top(state, build)


def _write_top(state: BuildState, build: BoardBuild) -> None:
    clock, board = build.clock, build.board
    top = BoardTop(
        state.lowered.network,
        clock=clock,
        selftest=build.selftest,
        design_id=build.design_id,
        baud=build.baud,
    )
    if clock.pll is not None:
        state.say(
            f"clock: {clock.f_mhz:g} MHz from the {board.clock_mhz:g} MHz oscillator (PLL "
            f"CLKI/{clock.pll.clki_div} FB x{clock.pll.clkfb_div} OP/{clock.pll.clkop_div})"
            + (" (automatic: a first target)" if build.auto_clock and not build.passes else "")
        )
    write_design(top, platform=board.make_platform(), board=board, workdir=build.workdir)


def synth(state: BuildState) -> None:
    """Yosys: the board top to a netlist of the board's cells."""
    build = state.board_build
    build.cells, build.mapper = synthesize(build.workdir, family=build.board.family)
    if build.mapper != "abc9":
        state.say("classic ABC LUT mapper (ABC9 hit an assertion)")


def pnr(state: BuildState) -> None:
    """nextpnr at the design clock (fixed seed); a missed clock is an error, with nextpnr's
    report kept for the report. With the automatic clock, a missed first target is not an
    error: the board top is made again at the fastest clock the PLL makes that the achieved
    Fmax meets with ``AUTO_MARGIN`` to spare, and synthesised, placed and routed again, at
    most ``AUTO_PASSES`` times in all."""
    build = state.board_build
    while True:
        report = _place_and_route(state)
        met = report.all_timing_met
        fmax = report.main_fmax_mhz
        build.passes.append({"target_mhz": build.clock.f_mhz, "fmax_mhz": fmax, "met": met})
        if met:
            break
        slower = _slower_clock(build, fmax) if build.board.family == "ecp5" else None
        if not build.auto_clock or slower is None or len(build.passes) >= AUTO_PASSES:
            hint = "a smaller --dsp-budget"
            if slower is not None:
                hint = (
                    f"--clock-mhz {slower.f_mhz:g} (the fastest the PLL makes below it), or " + hint
                )
            raise TimingError(
                f"timing not met: {report.main_clock} reached {fmax:.1f} MHz of the "
                f"{build.clock.f_mhz:g} MHz asked (nextpnr seed {state.options.seed}; log "
                f"{build.workdir / 'nextpnr.log'}); no bitstream written. Rebuild with {hint}"
            )
        state.say(
            f"{fmax:.1f} MHz reached, {build.clock.f_mhz:g} MHz missed: again at {slower.f_mhz:g} "
            f"MHz, the fastest the PLL makes below {fmax * (1 - AUTO_MARGIN):.1f} MHz"
        )
        build.clock = slower
        _write_top(state, build)
        synth(state)
    if not build.auto_clock:
        why = "the clock asked for"
    elif len(build.passes) == 1:
        why = "the automatic clock's first target, met"
    else:
        tried = build.passes[-2]
        why = (
            f"the fastest PLL clock below the {tried['fmax_mhz']:.1f} MHz reached at "
            f"{tried['target_mhz']:g} MHz, less {AUTO_MARGIN:.0%}"
        )
    build.clock_reason = why
    state.say(f"clock {build.clock.f_mhz:g} MHz met (Fmax {fmax:.1f} MHz; {why})")


def _slower_clock(build: BoardBuild, fmax: float):
    """The fastest clock the board's PLL makes that ``fmax`` meets with ``AUTO_MARGIN`` to spare
    and the UART's baud rate can run at, below the clock just tried; None when there is none."""
    from boards.link.uart import uart_divisor
    from boards.pll import ecp5_pll_frequencies

    board = build.board
    limit = min(fmax * (1 - AUTO_MARGIN), build.clock.f_mhz - 1e-9)
    for f in reversed(ecp5_pll_frequencies(board.clock_mhz)):
        if f > limit:
            continue
        try:
            uart_divisor(f * 1e6, build.baud)
        except ValueError:
            continue
        return clock_plan(board, f)
    return None


def _place_and_route(state: BuildState):
    build, options = state.board_build, state.options
    board = build.board
    state.say(f"nextpnr for {board.device} at {build.clock.f_mhz:g} MHz (seed {options.seed})")
    on_line, on_quiet = phase_reporter(state.say)
    status, log = place_and_route(
        build.workdir,
        family=board.family,
        device=board.device,
        package=board.package,
        constraints=constraints_name(board),
        frequency_mhz=build.clock.f_mhz,
        seed=options.seed,
        output=routed_name(board),
        report_file="nextpnr-report.json",
        on_line=on_line,
        on_quiet=on_quiet,
    )
    if status != 0:
        over = overfull(log)
        if over:
            raise FitError(
                f"the design does not fit {board.device}: placement needs {', '.join(over)} "
                "(the estimate was short of it); rebuild with a smaller --dsp-budget, or a "
                f"larger board (log {build.workdir / 'nextpnr.log'})"
            )
        raise tool_failure("nextpnr", status, build.workdir / "nextpnr.log", log)
    report = parse_nextpnr_log(log)
    build.nextpnr = report
    build.critical_path = critical_path(build.workdir / "nextpnr-report.json", report.main_clock)
    estimate = state.board_estimate
    rows = [["resource", "used", "available", "estimate"]]
    for cell, key in (
        ("MULT18X18D", "dsp"),
        ("TRELLIS_COMB", "lut"),
        ("TRELLIS_FF", "ff"),
        ("DP16KD", "ebr"),
        ("ICESTORM_DSP", "dsp"),
        ("ICESTORM_LC", "lut"),
        ("ICESTORM_RAM", "ebr"),
    ):
        if report.used(cell):
            rows.append(
                [
                    cell,
                    f"{report.used(cell):,}",
                    f"{report.available(cell):,}",
                    f"{getattr(estimate, key):,}",
                ]
            )
    for line in table(rows, right={1, 2, 3}):
        state.say(f"  {line}")
    if build.critical_path is not None:
        path = build.critical_path
        state.say(
            f"critical path: {path['from']} -> {path['to']}, {path['delay_ns']:.2f} ns "
            f"({path['logic_ns']:.2f} ns in cells, {path['routing_ns']:.2f} ns routing)"
        )
    return report


def netlist_simulator() -> str:
    """The netlist check's simulator: Verilator when installed (on the ULX3S-12F netlist of a
    small core, 300 vectors took 25 s with its compile, against 105 s in Icarus), else
    Icarus."""
    from sim.runner import available

    return "verilator" if available("verilator") else "icarus"


def netlist(state: BuildState) -> None:
    """With ``--netlist-sim N``: the core synthesised alone and its netlist simulated with the
    ECP5 cell models on N vectors against the golden model (ECP5 boards only), in
    :func:`netlist_simulator`."""
    options, build = state.options, state.board_build
    if options.netlist_vectors == 0:
        state.say("skipped (--netlist-sim 0)")
        return
    if build.board.family != "ecp5":
        state.say("skipped: the netlist check needs the ECP5 cell models")
        return
    netdir = state.out_dir / "netlist"
    netdir.mkdir(exist_ok=True)
    shutil.copyfile(state.verilog, netdir / "core.v")
    synthesize(
        netdir,
        family="ecp5",
        top=CORE_NAME,
        source="core.v",
        output="core.json",
        extra=NETLIST_SCRIPT,
    )
    graph = state.quantized.graph
    vectors = build.selftest
    if options.netlist_vectors > len(vectors):
        vectors = input_vectors(graph, state.data.test, options.netlist_vectors, 0)
    state.netlist_check = check_core(
        graph,
        state.lowered.interface(graph),
        state.verilog,
        vectors[: options.netlist_vectors],
        sim_dir=state.out_dir / "sim_netlist",
        what="synthesised netlist",
        progress=state.say,
        netlist=netdir / "core_netlist_sim.v",
        simulator=netlist_simulator(),
    )


def pack(state: BuildState) -> None:
    """The packer, then the bitstream into ``DIR`` (``top.bit`` or ``top.bin``)."""
    build = state.board_build
    packed = pack_bitstream(build.workdir, board=build.board)
    final = state.out_dir / build.board.bitstream_name
    os.replace(packed, final)
    state.bitstream = final
    state.say(f"made {state.recorded(final)}")
