"""Checking hardware against the golden model: which input vectors to use, the exact comparison
of a simulated core (its Verilog, or a synthesised netlist) with the golden model's outputs, and
the report section of the result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from compiler.artifacts import SimSection
from compiler.golden import quantize_input, run_integer
from compiler.ir import Graph
from debut.errors import SimulationMismatch
from debut.interface import CoreInterface

__all__ = ["check_core", "input_vectors", "sim_section"]


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
