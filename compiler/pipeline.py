"""The named, ordered pipeline from the front end's IR to a quantised graph.

Each step is a pure ``Graph -> Graph`` function; the verifier runs after every step and an
error names the step that broke the IR.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import numpy as np

from compiler.errors import IRVerificationError, OptionError
from compiler.fixed import MAX_WIDTH, MIN_WIDTH
from compiler.ir import Graph
from compiler.passes.balance_scales import balance_scales
from compiler.passes.calibrate import calibrate
from compiler.passes.fold_batchnorm import fold_batchnorm
from compiler.passes.fuse_activations import fuse_activations
from compiler.passes.quantize import quantize
from compiler.passes.size_accumulators import size_accumulators
from compiler.verify import verify

__all__ = ["Step", "check_bits", "quantization_steps", "run_steps"]

Step = tuple[str, Callable[[Graph], Graph]]


def check_bits(name: str, value: int) -> int:
    if not isinstance(value, int) or not MIN_WIDTH <= value <= MAX_WIDTH:
        raise OptionError(f"{name} must be an integer in {MIN_WIDTH}..{MAX_WIDTH}, not {value!r}")
    return value


def quantization_steps(calibration: np.ndarray, act_bits: int, weight_bits: int) -> list[Step]:
    """``calibration``: preprocessed calibration inputs."""
    check_bits("--act-bits", act_bits)
    check_bits("--weight-bits", weight_bits)
    return [
        ("fold_batchnorm", fold_batchnorm),
        ("fuse_activations", fuse_activations),
        ("balance_scales", partial(balance_scales, data=calibration, act_bits=act_bits)),
        ("calibrate", partial(calibrate, data=calibration)),
        ("quantize", partial(quantize, act_bits=act_bits, weight_bits=weight_bits)),
        ("size_accumulators", size_accumulators),
    ]


def run_steps(graph: Graph, steps: list[Step], timings: dict[str, float] | None = None) -> Graph:
    """Run the steps in order, verifying the IR after each; record each step's seconds."""
    problems = verify(graph)
    if problems:
        raise IRVerificationError(f"the front end produced a broken IR: {'; '.join(problems)}")
    for name, step in steps:
        start = time.perf_counter()
        graph = step(graph)
        if timings is not None:
            timings[name] = time.perf_counter() - start
        problems = verify(graph)
        if problems:
            raise IRVerificationError(f"pass {name!r} broke the IR: {'; '.join(problems)}")
    return graph
