"""IR passes: plain functions ``Graph -> Graph``, one per file, and the named, ordered pipeline
that takes the front end's IR to a quantised graph.

The verifier runs after every pass; an error names the pass that broke the IR.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from compiler.ir import Graph
from compiler.passes.balance_scales import balance_scales
from compiler.passes.calibrate import calibrate
from compiler.passes.fold_batchnorm import fold_batchnorm
from compiler.passes.fuse_activations import fuse_activations
from compiler.passes.quantize import quantize
from compiler.passes.size_accumulators import size_accumulators
from compiler.verify import verify
from debut.errors import IRVerificationError

__all__ = ["Pass", "quantization_passes", "run_passes"]

Pass = tuple[str, Callable[[Graph], Graph]]


def quantization_passes(calibration: np.ndarray, act_bits: int, weight_bits: int) -> list[Pass]:
    """``calibration``: preprocessed calibration inputs."""
    return [
        ("fold_batchnorm", fold_batchnorm),
        ("fuse_activations", fuse_activations),
        ("balance_scales", partial(balance_scales, data=calibration, act_bits=act_bits)),
        ("calibrate", partial(calibrate, data=calibration)),
        ("quantize", partial(quantize, act_bits=act_bits, weight_bits=weight_bits)),
        ("size_accumulators", size_accumulators),
    ]


def run_passes(graph: Graph, passes: list[Pass]) -> Graph:
    """Run the passes in order, verifying the IR before the first and after each."""
    problems = verify(graph)
    if problems:
        raise IRVerificationError(f"the front end produced a broken IR: {'; '.join(problems)}")
    for name, run in passes:
        graph = run(graph)
        problems = verify(graph)
        if problems:
            raise IRVerificationError(f"pass {name!r} broke the IR: {'; '.join(problems)}")
    return graph
