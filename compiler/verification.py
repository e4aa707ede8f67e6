"""Checking hardware against the golden model: which input vectors to use, the exact comparison
of a simulated core (its Verilog, or a synthesised netlist) with the golden model's outputs, the
same for a whole board top's netlist talked to over its UART with the host protocol, and the
report sections of the results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler.artifacts import SimSection
from compiler.golden import quantize_input, run_integer
from compiler.ir import Graph
from debut.errors import SimulationMismatch
from debut.interface import CoreInterface

__all__ = [
    "TopCheck",
    "check_board_top",
    "check_core",
    "input_vectors",
    "sim_section",
    "top_check_section",
]


def input_vectors(graph: Graph, test: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` input vectors: the raw ``test`` features first, then edge vectors (all max, all
    min, zero), then random vectors over the whole input format."""
    fmt, n = graph.input_format, graph.in_features
    tests = quantize_input(graph, test) if len(test) else np.empty((0, n), np.int64)
    edges = np.array([[fmt.max_int] * n, [fmt.min_int] * n, [0] * n], dtype=np.int64)
    rng = np.random.default_rng(seed)
    random = rng.integers(fmt.min_int, fmt.max_int + 1, size=(max(count, 0), n))
    return np.concatenate([tests, edges, random])[:count]


def sim_section(result) -> SimSection:
    """The report's record of a :class:`sim.runner.SimResult`."""
    return SimSection(
        simulator=result.simulator,
        vectors=result.vectors,
        mismatches=result.mismatches,
        cycles_per_vector=result.cycles_per_vector,
        framing_errors=result.framing_errors,
        timed_out=result.timed_out,
        latency_cycles=result.latency_cycles,
        vectors_per_second=result.vectors_per_second,
    )


def check_core(
    graph: Graph,
    interface: CoreInterface,
    verilog: Path,
    vectors: np.ndarray,
    *,
    sim_dir: Path,
    what: str,
    progress: Callable[[str], None],
    raise_on_mismatch: bool = True,
    **sim_options,
):
    """Simulate ``verilog`` on ``vectors`` against the golden model of ``graph``; raise
    :class:`SimulationMismatch` on any difference (unless ``raise_on_mismatch`` is false).
    ``sim_options`` go to :func:`sim.runner.run_sim`. Returns its result."""
    from sim.runner import run_sim

    expected = run_integer(graph, vectors).output
    result = run_sim(verilog, interface, vectors, expected, sim_dir=sim_dir, **sim_options)
    level = f" ({result.optimization})" if result.optimization else ""
    if result.model_cached:
        progress(f"{result.simulator} model{level} from the cache")
    else:
        progress(f"{result.simulator} compiled the design{level} in {result.compile_s:.1f} s")
    for mm in result.first_mismatches[:5]:
        progress(
            f"mismatch: vector {mm.vector}, element {mm.element}: expected {mm.expected}, "
            f"got {mm.got}"
        )
    if not result.passed:
        if raise_on_mismatch:
            raise SimulationMismatch(
                f"the {what} differs from the golden model: {result.mismatches} mismatches in "
                f"{result.vectors} vectors, {result.framing_errors} framing errors"
                f"{', timed out' if result.timed_out else ''}; logs in {result.sim_dir}"
            )
        return result
    progress(
        f"{result.vectors} vectors exact ({result.vectors_per_second:.1f} vectors/s, "
        f"{result.cycles_per_vector:.1f} cycles per vector)"
    )
    return result


@dataclass(frozen=True)
class TopCheck:
    """What the netlist check of a board top found (:func:`check_board_top`): ``vectors`` sent
    as INFER frames and the output elements of them that differ from the golden model's
    (``mismatches``; every element of a vector whose reply never came counts); the self-test's
    vectors, whether its checksum was the golden model's and the cycles it took by the device's
    own count (``selftest_mismatches``: every element of its vectors when the checksum
    differs); whether PING named the build's design; ``protocol_errors``, the PING and SELFTEST
    replies that were not one good frame of their kind, a PING naming another design and the
    characters with a low stop bit; ``problems``, every difference in words; the simulation's
    own record (``sim``)."""

    vectors: int
    mismatches: int
    selftest_vectors: int
    selftest_passed: bool
    selftest_mismatches: int
    protocol_errors: int
    selftest_cycles: int | None
    identity_passed: bool
    problems: tuple[str, ...]
    sim: object  # sim.runner.TopSimResult

    @property
    def passed(self) -> bool:
        return not self.problems


def check_board_top(
    graph: Graph,
    interface: CoreInterface,
    netlist: Path,
    *,
    pins: dict[str, str],
    divisor: int,
    design_id: int,
    selftest: np.ndarray,
    vectors: np.ndarray,
    sim_dir: Path,
    progress: Callable[[str], None],
    simulator: str = "verilator",
    raise_on_mismatch: bool = True,
) -> TopCheck:
    """Simulate ``netlist``, the simulation netlist of a whole ECP5 board top (module ``top``;
    ``pins``: its ``clock``, ``rx`` and ``tx`` ports), talking to it over its UART at
    ``divisor`` cycles per bit with frames of the host protocol: PING must name ``design_id``,
    SELFTEST (the on-chip ``selftest`` vectors through the core at full speed) must return the
    checksum of the golden model's outputs, and each of ``vectors`` sent as an INFER frame must
    come back as the golden model's output, every element equal. Raises
    :class:`SimulationMismatch` on any difference (unless ``raise_on_mismatch`` is false);
    returns what was found."""
    from boards.link import protocol
    from sim.runner import run_top_sim

    in_fmt, out_fmt = graph.input_format, graph.output_format
    n_in, n_out = graph.in_features, graph.out_features
    frame = protocol.HEADER_SIZE + protocol.TRAILER_SIZE
    out_size = frame + n_out * protocol.element_bytes(out_fmt)
    byte_cycles = 10 * divisor
    core = interface.latency_cycles + max(
        interface.ii_cycles, interface.input.beats, interface.output.beats
    )

    def limit(request: bytes, reply: int, work: int) -> int:
        return 2 * ((len(request) + reply) * byte_cycles + work) + 1000

    requests = [
        (protocol.ping_request(), frame + protocol.IDENTITY_SIZE, 0),
        (protocol.selftest_request(), frame + protocol.SELFTEST_SIZE, core * (len(selftest) + 1)),
    ]
    requests += [(protocol.infer_request(v, in_fmt, n_in), out_size, core) for v in vectors]
    exchanges = [(request, reply, limit(request, reply, work)) for request, reply, work in requests]
    progress(f"PING, SELFTEST and {len(vectors)} INFER frames over the UART in {simulator} ...")
    result = run_top_sim(
        netlist,
        top="top",
        clock=pins["clock"],
        rx=pins["rx"],
        tx=pins["tx"],
        divisor=divisor,
        exchanges=exchanges,
        sim_dir=sim_dir,
        simulator=simulator,
    )
    level = f" ({result.optimization})" if result.optimization else ""
    if result.model_cached:
        progress(f"{result.simulator} model{level} from the cache")
    else:
        progress(f"{result.simulator} compiled the netlist{level} in {result.compile_s:.1f} s")

    problems: list[str] = []
    protocol_errors = 0

    def reply(k: int, name: str):
        nonlocal protocol_errors
        frames = protocol.decode_frames(result.received[k])
        if result.timed_out[k] or len(frames) != 1:
            if k < 2:  # PING, SELFTEST; a missing INFER reply counts as mismatches
                protocol_errors += 1
            problems.append(
                f"{name}: {len(result.received[k])} bytes came back, not one reply frame"
                + (" (timed out)" if result.timed_out[k] else "")
            )
            return None
        return frames[0]

    identity_passed = False
    if (frame_ := reply(0, "PING")) is not None:
        try:
            identity = protocol.parse_ping_reply(frame_)
        except protocol.ProtocolError as error:
            problems.append(f"PING: {error}")
            protocol_errors += 1
        else:
            want = (n_in, in_fmt, n_out, out_fmt, len(selftest), design_id)
            got = (
                identity.in_features,
                identity.in_format,
                identity.out_features,
                identity.out_format,
                identity.selftest_vectors,
                identity.design_id,
            )
            identity_passed = got == want
            if not identity_passed:
                protocol_errors += 1
                problems.append(f"PING: the device says {identity}, not design 0x{design_id:08x}")

    golden = protocol.selftest_checksum(run_integer(graph, selftest).output, out_fmt)
    selftest_passed, selftest_cycles = False, None
    if (frame_ := reply(1, "SELFTEST")) is not None:
        try:
            answer = protocol.parse_selftest_reply(frame_)
        except protocol.ProtocolError as error:
            problems.append(f"SELFTEST: {error}")
            protocol_errors += 1
        else:
            selftest_cycles = answer.cycles
            selftest_passed = answer.checksum == golden
            if not selftest_passed:
                problems.append(
                    f"SELFTEST: checksum 0x{answer.checksum:08x}, the golden model's 0x{golden:08x}"
                )

    expected = run_integer(graph, vectors).output if len(vectors) else np.empty((0, n_out))
    mismatches = 0
    for k, want in enumerate(expected):
        if (frame_ := reply(2 + k, f"INFER {k}")) is None:
            mismatches += n_out
            continue
        try:
            got = protocol.parse_infer_reply(frame_, out_fmt, n_out)
        except protocol.ProtocolError as error:
            problems.append(f"INFER {k}: {error}")
            mismatches += n_out
            continue
        wrong = np.flatnonzero(got != want)
        mismatches += len(wrong)
        for element in wrong[:2]:
            problems.append(
                f"INFER {k}, element {element}: expected {want[element]}, got {got[element]}"
            )
    if result.framing_errors:
        problems.append(f"{result.framing_errors} characters on tx with a low stop bit")
    check = TopCheck(
        vectors=len(vectors),
        mismatches=mismatches,
        selftest_vectors=len(selftest),
        selftest_passed=selftest_passed,
        selftest_mismatches=0 if selftest_passed else len(selftest) * n_out,
        protocol_errors=protocol_errors + result.framing_errors,
        selftest_cycles=selftest_cycles,
        identity_passed=identity_passed,
        problems=tuple(problems),
        sim=result,
    )
    for problem in problems[:5]:
        progress(f"mismatch: {problem}")
    if not check.passed:
        if raise_on_mismatch:
            raise SimulationMismatch(
                f"the synthesised netlist differs from the golden model: {len(problems)} "
                f"differences, the first: {problems[0]}; logs in {result.sim_dir}"
            )
        return check
    progress(
        f"PING: design 0x{design_id:08x}; SELFTEST: {len(selftest)} vectors in "
        f"{selftest_cycles:,} cycles, checksum 0x{golden:08x} as the golden model's; "
        f"{len(vectors)} INFER vectors exact"
    )
    progress(
        f"{result.cycles:,} cycles simulated in {result.sim_s:.1f} s "
        f"({result.cycles / max(result.sim_s, 1e-9):,.0f} cycles/s)"
    )
    return check


def top_check_section(check: TopCheck) -> SimSection:
    """The report's record of a :class:`TopCheck`: ``vectors`` counts the INFER vectors and the
    self-test's, ``mismatches`` the INFER elements that differ plus, when the self-test's
    checksum differs, every element of its vectors; ``framing_errors`` the PING and SELFTEST
    replies that were not one good frame of the right kind (or a PING naming another design)
    and the characters with a low stop bit; ``cycles_per_vector`` the self-test's cycles per
    vector at full speed, by the device's own count; ``vectors_per_second`` the simulation's
    speed over all of them."""
    sim = check.sim
    checked = check.vectors + check.selftest_vectors
    return SimSection(
        simulator=sim.simulator,
        vectors=checked,
        mismatches=check.mismatches + check.selftest_mismatches,
        cycles_per_vector=(check.selftest_cycles or 0) / max(check.selftest_vectors, 1),
        framing_errors=check.protocol_errors,
        timed_out=any(sim.timed_out),
        latency_cycles=None,
        vectors_per_second=checked / max(sim.sim_s, 1e-9),
    )
