"""cocotb testbench: the emitted network core against the integer golden model.

The bench is made of four pieces: a driver sends input vectors as framed beats on ``i__*`` with
random idle cycles, a monitor takes beats from ``o__*`` with random backpressure and reassembles
vectors (checking the first/last framing), the reference model is the golden model's expected
integers (precomputed, read from a file) and a scoreboard compares every element exactly.

Inputs, all from the environment (``sim.runner.run_sim`` sets them):

- ``DEBUT_SIM_INTERFACE``: a JSON file holding the core's interface
  (:class:`debut.interface.CoreInterface`): ports, elements per beat and element formats.
- ``DEBUT_SIM_VECTORS``: an ``.npz`` with ``inputs`` (N x input elements) and ``expected``
  (N x output elements), integers in the interface's formats.
- ``DEBUT_SIM_RESULTS``: where the results JSON is written (see :func:`results_dict`).
- ``DEBUT_SIM_IDLE``, ``DEBUT_SIM_STALL``: probabilities of an idle cycle before each input beat
  and of withholding ``o__ready`` in a cycle (default 0).
- ``COCOTB_RANDOM_SEED``: seeds both random streams.

A beat is the flattened ``hw.layouts.beat_layout`` struct: lane ``k`` in bits
``k*width .. k*width+width-1`` (two's complement when the format is signed), ``first`` in bit
``per_beat*width`` and ``last`` in the bit above it. Element ``j`` of a vector travels in beat
``j // per_beat``, lane ``j % per_beat``; unused lanes of a last beat are sent as zero and ignored
on output.

The cocotb test fails when any element mismatches, a vector is missing (counted as every one of
its elements mismatching) or an output beat is framed wrongly; the results file is written first.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import RisingEdge

from debut.interface import BeatFormat, CoreInterface

__all__ = [
    "ENV_IDLE",
    "ENV_INTERFACE",
    "ENV_RESULTS",
    "ENV_STALL",
    "ENV_VECTORS",
    "FramingError",
    "Mismatch",
    "Scoreboard",
    "VectorAssembler",
    "monitor_limits",
    "results_dict",
]

ENV_INTERFACE = "DEBUT_SIM_INTERFACE"
ENV_VECTORS = "DEBUT_SIM_VECTORS"
ENV_RESULTS = "DEBUT_SIM_RESULTS"
ENV_IDLE = "DEBUT_SIM_IDLE"
ENV_STALL = "DEBUT_SIM_STALL"

CLOCK_NS = 10
RESET_CYCLES = 2
KEEP_MISMATCHES = 20


# --- pure parts: beat packing, reassembly, scoreboard (no simulator needed) ---------------------


@dataclass(frozen=True)
class FramingError:
    """Output beat ``beat`` of vector ``vector`` carried the wrong first/last flags, or (when
    ``vector`` is the number of expected vectors) arrived after the last of them."""

    vector: int
    beat: int
    first: bool
    last: bool


class VectorAssembler:
    """Reassembles output vectors from beats: every ``beats`` consecutive beats form a vector,
    and each beat's flags must read ``first`` on the vector's first beat only and ``last`` on
    its last beat only (a mismatch is recorded, the beat is still used)."""

    def __init__(self, fmt: BeatFormat) -> None:
        self.fmt = fmt
        self.framing_errors: list[FramingError] = []
        self.vectors = 0
        self._lanes: list[int | None] = []
        self._beat = 0

    @property
    def beat(self) -> int:
        """Index of the next beat within its vector."""
        return self._beat

    def extra(self, first: bool, last: bool) -> None:
        """Record a beat that arrived after every expected vector as a framing error."""
        extra = sum(e.vector == self.vectors for e in self.framing_errors)
        self.framing_errors.append(FramingError(self.vectors, extra, first, last))

    def push(self, lanes: list[int | None], first: bool, last: bool) -> list[int | None] | None:
        """Take one beat; returns the vector it completes, else None."""
        beat = self._beat
        if first != (beat == 0) or last != (beat == self.fmt.beats - 1):
            self.framing_errors.append(FramingError(self.vectors, beat, first, last))
        self._lanes += lanes
        if beat < self.fmt.beats - 1:
            self._beat += 1
            return None
        vector = self._lanes[: self.fmt.elements]
        self._lanes, self._beat = [], 0
        self.vectors += 1
        return vector


@dataclass(frozen=True)
class Mismatch:
    """Element ``element`` of vector ``vector``: the golden model expected ``expected``, the
    design gave ``got`` (None: the vector never arrived)."""

    vector: int
    element: int
    expected: int
    got: int | None


@dataclass
class Scoreboard:
    """Exact comparison of received vectors with the expected integers; keeps the first
    ``keep`` mismatches and counts all of them."""

    expected: np.ndarray
    keep: int = KEEP_MISMATCHES
    mismatches: int = 0
    first_mismatches: list[Mismatch] = field(default_factory=list)
    received: int = 0

    def _record(self, vector: int, element: int, got: int | None) -> None:
        self.mismatches += 1
        if len(self.first_mismatches) < self.keep:
            expected = int(self.expected[vector, element])
            self.first_mismatches.append(Mismatch(vector, element, expected, got))

    def check(self, vector: int, got: list[int | None]) -> int:
        """Compare vector ``vector``; returns how many of its elements mismatched."""
        if not 0 <= vector < len(self.expected):
            raise ValueError(f"vector must be in 0..{len(self.expected) - 1}, not {vector!r}")
        expected = self.expected[vector]
        if len(got) != len(expected):
            raise ValueError(f"a vector must have {len(expected)} elements, not {len(got)}")
        before = self.mismatches
        for element, (want, have) in enumerate(zip(expected.tolist(), got, strict=True)):
            if want != have:
                self._record(vector, element, None if have is None else int(have))
        self.received = max(self.received, vector + 1)
        return self.mismatches - before

    def finish(self) -> None:
        """Count every element of the vectors that never arrived as a mismatch."""
        for vector in range(self.received, len(self.expected)):
            for element in range(self.expected.shape[1]):
                self._record(vector, element, None)
        self.received = len(self.expected)


def monitor_limits(interface: CoreInterface, idle: float, stall: float) -> tuple[int, int]:
    """(patience, tail) for :func:`monitor`: a run counts as hung after ten times the latency
    and two vectors' worth of cycles (at the slowest of input, core and output, stalls included)
    pass with no output beat; after the last vector, a core idles for at least its II and an
    output vector's beats."""
    beats_in = interface.input.beats / (1.0 - idle)
    beats_out = interface.output.beats / (1.0 - stall)
    per_vector = max(interface.ii_cycles, beats_in, beats_out)
    patience = int(10 * (interface.latency_cycles + 2 * per_vector)) + 1000
    return patience, interface.ii_cycles + interface.output.beats + 8


def results_dict(
    *,
    simulator: str,
    scoreboard: Scoreboard,
    assembler: VectorAssembler,
    timed_out: bool,
    cycles: int,
    in_done: list[int],
    out_first: list[int],
    out_done: list[int],
    wall_s: float,
    seed: int | None,
    idle: float,
    stall: float,
) -> dict:
    """The results JSON: counts, the first mismatches, cycles per vector (mean interval between
    completed output vectors; the whole run for one vector), the latency of the first vector
    (cycles from its last input beat to its first output beat) and the simulation wall time."""
    vectors = len(scoreboard.expected)
    if len(out_done) >= 2:
        cycles_per_vector = (out_done[-1] - out_done[0]) / (len(out_done) - 1)
    else:
        cycles_per_vector = float(cycles)
    latency = out_first[0] - in_done[0] if out_first and in_done else None
    return {
        "simulator": simulator,
        "vectors": vectors,
        "received": assembler.vectors,
        "mismatches": scoreboard.mismatches,
        "first_mismatches": [asdict(m) for m in scoreboard.first_mismatches],
        "framing_errors": len(assembler.framing_errors),
        "first_framing_errors": [asdict(e) for e in assembler.framing_errors[:KEEP_MISMATCHES]],
        "timed_out": timed_out,
        "cycles": cycles,
        "cycles_per_vector": cycles_per_vector,
        "latency_cycles": latency,
        "sim_wall_s": wall_s,
        "vectors_per_second": assembler.vectors / wall_s if wall_s > 0 else None,
        "seed": seed,
        "idle": idle,
        "stall": stall,
    }


# --- simulator parts -----------------------------------------------------------------------------


def _cycle() -> int:
    return int(get_sim_time(unit="ns")) // CLOCK_NS


async def drive(dut, fmt: BeatFormat, inputs: np.ndarray, rng, idle: float, done: list[int]):
    """Driver: sends each vector as framed beats on ``i__*``, idling (valid low) before each
    beat with probability ``idle``; appends the cycle of each vector's last beat to ``done``."""
    edge = RisingEdge(dut.clk)
    valid, ready, payload = dut.i__valid, dut.i__ready, dut.i__payload
    for vector in inputs:
        for beat in fmt.beats_of(vector):
            if idle and rng.random() < idle:
                valid.value = 0
                await edge
                while rng.random() < idle:
                    await edge
            payload.value = beat
            valid.value = 1
            await edge
            while not ready.value:
                await edge
        done.append(_cycle())
    valid.value = 0


def _read(payload, fmt: BeatFormat) -> tuple[list[int | None], bool, bool]:
    value = payload.value
    if value.is_resolvable:
        return fmt.unpack(value.to_unsigned())
    return fmt.unpack_bits(str(value))


async def monitor(
    dut,
    assembler: VectorAssembler,
    scoreboard: Scoreboard,
    rng,
    stall: float,
    limits: tuple[int, int],
    first_times: list[int],
    done_times: list[int],
) -> bool:
    """Monitor: takes beats from ``o__*``, withholding ``o__ready`` with probability ``stall``
    each cycle, and hands each reassembled vector to the scoreboard; appends the cycle of each
    vector's first and last beat to ``first_times`` and ``done_times``. ``limits`` is
    (patience, tail): returns False when ``patience`` cycles pass without an output beat before
    every vector arrived; afterwards it keeps ready high for ``tail`` cycles and records any beat
    offered then as a framing error."""
    edge = RisingEdge(dut.clk)
    valid, ready, payload = dut.o__valid, dut.o__ready, dut.o__payload
    fmt = assembler.fmt
    patience, tail = limits
    count = len(scoreboard.expected)
    quiet = 0
    state = True
    ready.value = 1
    while assembler.vectors < count:
        want = not (stall and rng.random() < stall)
        if want != state:
            ready.value = int(want)
            state = want
        await edge
        if state and valid.value:
            quiet = 0
            if assembler.beat == 0:
                first_times.append(_cycle())
            vector = assembler.push(*_read(payload, fmt))
            if vector is not None:
                done_times.append(_cycle())
                scoreboard.check(assembler.vectors - 1, vector)
        else:
            quiet += 1
            if quiet > patience:
                return False
    ready.value = 1
    for _ in range(tail):
        await edge
        if valid.value:
            _, first, last = _read(payload, fmt)
            assembler.extra(first, last)
    ready.value = 0
    return True


def _load() -> tuple[CoreInterface, np.ndarray, np.ndarray, Path, float, float]:
    interface = CoreInterface.from_dict(json.loads(Path(os.environ[ENV_INTERFACE]).read_text()))
    with np.load(os.environ[ENV_VECTORS]) as data:
        inputs = np.asarray(data["inputs"], dtype=np.int64)
        expected = np.asarray(data["expected"], dtype=np.int64)
    idle = float(os.environ.get(ENV_IDLE, "0"))
    stall = float(os.environ.get(ENV_STALL, "0"))
    return interface, inputs, expected, Path(os.environ[ENV_RESULTS]), idle, stall


@cocotb.test()
async def core_matches_golden_model(dut) -> None:
    """Every output element of the core equals the golden model's, with random input idles
    and output backpressure."""
    interface, inputs, expected, results_path, idle, stall = _load()
    fmt_in, fmt_out = interface.input.beat_format, interface.output.beat_format
    if inputs.shape[1:] != (fmt_in.elements,) or expected.shape != (
        len(inputs),
        fmt_out.elements,
    ):
        raise ValueError(
            f"inputs must be (N, {fmt_in.elements}) and expected (N, {fmt_out.elements}), "
            f"not {inputs.shape} and {expected.shape}"
        )
    for port, fmt in (("i__payload", fmt_in), ("o__payload", fmt_out)):
        if len(getattr(dut, port)) != fmt.payload_width:
            raise ValueError(
                f"{port} must have {fmt.payload_width} bits as the core's interface says, "
                f"not {len(getattr(dut, port))}: the Verilog and the interface disagree"
            )
    # cocotb seeds each test from COCOTB_RANDOM_SEED and the test's name; record the former
    seed = cocotb.RANDOM_SEED
    run_seed = os.environ.get("COCOTB_RANDOM_SEED")
    scoreboard = Scoreboard(expected)
    assembler = VectorAssembler(fmt_out)
    in_done: list[int] = []
    out_first: list[int] = []
    out_done: list[int] = []

    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    dut.i__valid.value = 0
    dut.i__payload.value = 0
    dut.o__ready.value = 0
    dut.rst.value = 1
    for _ in range(RESET_CYCLES):
        await RisingEdge(dut.clk)
    dut.rst.value = 0

    start, start_cycle = time.perf_counter(), _cycle()
    driver = cocotb.start_soon(
        drive(dut, fmt_in, inputs, random.Random(f"{seed}-driver"), idle, in_done)
    )
    completed = await monitor(
        dut,
        assembler,
        scoreboard,
        random.Random(f"{seed}-monitor"),
        stall,
        monitor_limits(interface, idle, stall),
        out_first,
        out_done,
    )
    wall_s = time.perf_counter() - start
    if not driver.done():
        driver.cancel()
    scoreboard.finish()
    results = results_dict(
        simulator=cocotb.SIM_NAME,
        scoreboard=scoreboard,
        assembler=assembler,
        timed_out=not completed,
        cycles=(out_done[-1] if out_done else _cycle()) - start_cycle,
        in_done=in_done,
        out_first=out_first,
        out_done=out_done,
        wall_s=wall_s,
        seed=None if run_seed is None else int(run_seed),
        idle=idle,
        stall=stall,
    )
    results_path.write_text(json.dumps(results, indent=1))
    for m in scoreboard.first_mismatches[:5]:
        dut._log.error(
            "vector %d element %d: expected %d, got %s", m.vector, m.element, m.expected, m.got
        )
    assert completed, f"timed out: {assembler.vectors} of {len(inputs)} vectors arrived"
    assert not assembler.framing_errors, (
        f"{len(assembler.framing_errors)} output beats framed wrongly, first "
        f"{assembler.framing_errors[0]}"
    )
    assert scoreboard.mismatches == 0, f"{scoreboard.mismatches} elements mismatch"
