"""Steps on the board: the board top around the core (PLL, UART host link with its self-test
ROM, LEDs), Yosys, nextpnr, the check of the synthesised netlist (the whole board top, over its
UART) and the packer.

They work in ``DIR/bitstream/``; only ``pack`` puts a bitstream into ``DIR``, after every check
passed. A design that misses its clock or differs from the golden model leaves none.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

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
from boards.pll import ecp5_pll_frequencies, retarget_ecp5_config
from boards.tools import tool_failure
from boards.yosys import synthesize
from compiler.console import table
from compiler.golden import run_integer
from compiler.options import AUTO_FIRST_MHZ, AUTO_MARGIN
from compiler.steps.core import selftest_vectors
from compiler.steps.state import BoardBuild, BuildState
from compiler.verification import check_board_top, input_vectors
from debut.errors import FitError, SimulationError, TimingError, ToolError

__all__ = [
    "AUTO_FIRST_MHZ",
    "AUTO_MARGIN",
    "harness",
    "netlist",
    "netlist_simulator",
    "pack",
    "pnr",
    "synth",
]


# With the netlist check, in the synth step's own Yosys run, after synthesis: the board top's
# netlist as mapped (top_netlist.v), then the same netlist for simulation (top_netlist_sim.v):
# the LUTs as the INIT bit their inputs select and the I/O cells as plain connections
# (sim/models/netlist_sim_map.v), the flip-flops, carry cells and muxes replaced by Yosys's own
# simulation models of them. The DSP, block RAM and PLL cells stay instances, for our models
# (sim/models/). The mapped design is saved before and loaded after, so the JSON nextpnr gets
# is the one a build without the check writes. (Splitting multi-bit wires into bits would spare
# Verilator a few loops it evaluates until they settle, 3 on a small core's top, and makes the
# C++ of a large top seven times larger: 81 MB instead of 11.6 on digits_debut_small's.)
NETLIST_SCRIPT = (
    "write_verilog -noattr top_netlist.v\n"
    "design -save mapped\n"
    "techmap -map netlist_sim_map.v t:LUT4 t:TRELLIS_IO\n"
    "techmap -autoproc -map +/ecp5/cells_sim.v t:TRELLIS_FF t:CCU2C t:PFUMX t:L6MUX21 "
    "t:TRELLIS_DPR16X4\n"
    "opt_clean\n"
    "write_verilog -noattr top_netlist_sim.v\n"
    "design -load mapped\n"
)
NETLIST_FILES = ("top_netlist.v", "top_netlist_sim.v")


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
            f"{clock.pll.describe()})"
            + (" (automatic: a first target)" if build.auto_clock and not build.passes else "")
        )
    write_design(top, platform=board.make_platform(), board=board, workdir=build.workdir)


def synth(state: BuildState) -> None:
    """Yosys: the board top to a netlist of the board's cells; with the netlist check, the
    same run also writes that netlist as Verilog, as mapped and for simulation
    (``NETLIST_SCRIPT``)."""
    from sim.runner import NETLIST_SIM_MAP

    build = state.board_build
    workdir = build.workdir
    extra = ""
    for name in NETLIST_FILES:
        (workdir / name).unlink(missing_ok=True)
    if _netlist_check(state):
        shutil.copyfile(NETLIST_SIM_MAP, workdir / NETLIST_SIM_MAP.name)
        extra = NETLIST_SCRIPT
    build.cells, build.mapper = synthesize(workdir, family=build.board.family, extra=extra)
    _check_multipliers(state)


# iCE40: Yosys (synth_ice40 -dsp) infers an SB_MAC16 for a multiply whose product has at least
# this many bits (an 8 x 3 multiply gets one, 8 x 2 and 5 x 5 do not: Yosys 0.70, measured)
ICE40_DSP_MIN_PRODUCT_BITS = 11


def _check_multipliers(state: BuildState) -> None:
    """Every multiplier of the core must be a DSP of the netlist: on the ECP5 the core
    instantiates its MULT18X18Ds, on the iCE40 synthesis infers SB_MAC16s (checked where every
    product is wide enough for that). Fewer means synthesis removed or tied off part of the
    datapath (Yosys 0.70 once took a product register for the SB_MAC16's own and tied the
    product to 0, with only a warning), and the bitstream would compute wrong results."""
    build, options = state.board_build, state.options
    family = build.board.family
    cell = "MULT18X18D" if family == "ecp5" else "SB_MAC16"
    if family == "ice40" and options.act_bits + options.weight_bits < ICE40_DSP_MIN_PRODUCT_BITS:
        return
    multipliers = state.lowered.network.multipliers
    kept = build.cells.get(cell, 0)
    if kept < multipliers:
        raise ToolError(
            f"synthesis kept {kept} {cell} of the core's {multipliers} multipliers: Yosys removed "
            "or tied off part of the datapath, and the bitstream would compute wrong results "
            f"(log {build.workdir / 'yosys.log'}); no bitstream written. Check the Yosys version "
            "against setup.sh's pin"
        )


def pnr(state: BuildState) -> None:
    """nextpnr at the design clock (fixed seed), once. A clock asked for (``--clock-mhz``) that
    is missed is an error, with nextpnr's report kept for the report. With the automatic clock
    the routed design's PLL is then set to the fastest clock it makes that the achieved Fmax
    meets with ``AUTO_MARGIN`` to spare: only the PLL's dividers change (nothing else in the
    top depends on that clock: ``boards.harness``), so the routing and its delays stay as
    they were timed."""
    build = state.board_build
    report = _place_and_route(state)
    fmax, target = report.main_fmax_mhz, build.clock.f_mhz
    build.passes.append({"target_mhz": target, "fmax_mhz": fmax, "met": report.main_timing_met})
    others = [
        clock for clock, met in report.timing_met.items() if not met and clock != report.main_clock
    ]
    if others:
        raise TimingError(
            f"timing not met on {', '.join(others)} (the oscillator's domain: UARTs and tick); "
            f"log {build.workdir / 'nextpnr.log'}; no bitstream written"
        )
    if build.auto_clock and build.clock.pll is not None:
        chosen = _fastest_clock(build, fmax)
        if chosen is None:
            raise TimingError(
                f"timing not met: {report.main_clock} reached {fmax:.1f} MHz, below every clock "
                f"the PLL makes with {AUTO_MARGIN:.0%} to spare (log "
                f"{build.workdir / 'nextpnr.log'}); no bitstream written. Rebuild with a smaller "
                "--dsp-budget"
            )
        if chosen.f_mhz != target:
            config = build.workdir / routed_name(build.board)
            config.write_text(retarget_ecp5_config(config.read_text(), build.clock.pll, chosen.pll))
            build.clock = chosen
        why = (
            f"the fastest PLL clock below the {fmax:.1f} MHz the design reached, routed at "
            f"{target:g} MHz, less {AUTO_MARGIN:.0%}"
        )
    elif not report.main_timing_met:
        slower = _fastest_clock(build, fmax) if build.board.family == "ecp5" else None
        hint = "a smaller --dsp-budget"
        if slower is not None:
            hint = f"--clock-mhz {slower.f_mhz:g} (the fastest the PLL makes below it), or " + hint
        raise TimingError(
            f"timing not met: {report.main_clock} reached {fmax:.1f} MHz of the "
            f"{target:g} MHz asked (nextpnr seed {state.options.seed}; log "
            f"{build.workdir / 'nextpnr.log'}); no bitstream written. Rebuild with {hint}"
        )
    else:
        why = "the clock asked for" if state.options.clock_mhz is not None else "the board's clock"
    build.clock_reason = why
    state.say(f"clock {build.clock.f_mhz:g} MHz met (Fmax {fmax:.1f} MHz; {why})")


def _fastest_clock(build: BoardBuild, fmax: float):
    """The fastest clock the board's PLL makes that ``fmax`` meets with ``AUTO_MARGIN`` to
    spare; None when there is none."""
    board = build.board
    limit = fmax * (1 - AUTO_MARGIN)
    below = [f for f in ecp5_pll_frequencies(board.clock_mhz) if f <= limit]
    return clock_plan(board, below[-1]) if below else None


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
        if not over and "utilisation limit" in log:  # nextpnr-ice40's placer gave up
            over = ["more cells than it could place"]
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
    """The netlist check's simulator: Verilator when installed, else Icarus (seventy times
    slower on a small core's top: docs/cli.md)."""
    from sim.runner import available

    return "verilator" if available("verilator") else "icarus"


def _netlist_check(state: BuildState) -> bool:
    """Whether this build checks its netlist (``--netlist-sim N``, N > 0, on an ECP5 board)."""
    return state.options.netlist_vectors > 0 and state.board_build.board.family == "ecp5"


def _top_pins(board, netlist: Path) -> dict[str, str]:
    """The board top's clock and UART pins, as the platform names the top's ports; each must be
    a port of ``netlist``'s top module."""
    platform = board.make_platform()
    pins = {
        "clock": f"{platform.default_clk}_0__io",
        "rx": "uart_0__rx__io",
        "tx": "uart_0__tx__io",
    }
    header = ""
    with open(netlist) as text:
        for line in text:
            if header or line.startswith("module top("):
                header += line
                if ");" in line:
                    break
    ports = set(re.findall(r"[A-Za-z_][A-Za-z0-9_$]*", header.partition("(")[2]))
    for what, name in pins.items():
        if name not in ports:
            raise SimulationError(f"{netlist} must have a {what} port {name!r}, not none")
    return pins


def netlist(state: BuildState) -> None:
    """With ``--netlist-sim N``: the netlist of the final synthesis, the one packed (the whole
    board top), simulated in :func:`netlist_simulator` at its pins (ECP5 boards only): PING, the
    self-test at full speed and N vectors as INFER frames over its UART, against the golden
    model (:func:`compiler.verification.check_board_top`)."""
    from boards.link.uart import uart_divisor

    options, build = state.options, state.board_build
    if options.netlist_vectors == 0:
        state.say("skipped (--netlist-sim 0)")
        return
    if not _netlist_check(state):
        state.say("skipped: the netlist check needs the ECP5 cell models")
        return
    graph = state.quantized.graph
    sim_netlist = build.workdir / NETLIST_FILES[1]
    # the self-test ROM holds the first test vectors; INFER takes the ones after them
    vectors = input_vectors(
        graph, state.data.test[len(build.selftest) :], options.netlist_vectors, 1
    )
    state.netlist_check = check_board_top(
        graph,
        state.lowered.interface(graph),
        sim_netlist,
        pins=_top_pins(build.board, sim_netlist),
        divisor=uart_divisor(build.clock.oscillator_mhz * 1e6, build.baud),
        design_id=build.design_id,
        selftest=build.selftest,
        vectors=vectors,
        sim_dir=state.out_dir / "sim_netlist",
        progress=state.say,
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
