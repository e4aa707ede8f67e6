"""The IR verifier, run after every pass: shapes chain up, arrays match their chains, every
tensor of a quantised graph has a format, integers fit their formats and accumulators are wide
enough for the worst case."""

from __future__ import annotations

from compiler.ir import ChainOp, Graph
from compiler.passes.size_accumulators import accumulator_bounds

__all__ = ["verify"]

MAX_ACC_WIDTH = 63  # the golden model accumulates in int64


def _problems(graph: Graph) -> list[str]:
    problems = []
    features = graph.in_features
    fmt = graph.input_format
    for op in graph.ops:
        if op.in_features != features:
            problems.append(f"{op.name} takes {op.in_features} features but receives {features}")
        features = op.out_features
        if not isinstance(op, ChainOp):
            continue
        if op.twiddle.shape != (op.chain.params,):
            problems.append(f"{op.name}: {op.twiddle.shape[0]} weights for {op.chain.params}")
        if op.bias.shape != (op.out_features,):
            problems.append(f"{op.name}: bias of shape {op.bias.shape}")
        if fmt is None:
            continue
        q = op.quant
        if q is None:
            problems.append(f"{op.name} has no fixed-point formats")
            continue
        n = len(op.chain)
        if q.in_format != fmt:
            problems.append(f"{op.name} reads {q.in_format} but its input is {fmt}")
        if len(q.weight_formats) != n or len(q.out_formats) != n:
            problems.append(f"{op.name}: formats for {len(q.weight_formats)} factors, not {n}")
            continue
        if q.int_twiddle.shape != (op.chain.params,) or q.int_bias.shape != (op.out_features,):
            problems.append(f"{op.name}: integer weights or bias of the wrong shape")
            continue
        for k, (wf, part) in enumerate(
            zip(q.weight_formats, op.chain.split(q.int_twiddle), strict=True)
        ):
            if part.min(initial=0) < wf.min_int or part.max(initial=0) > wf.max_int:
                problems.append(f"{op.name} factor {k}: weights outside {wf}")
        if q.acc_widths:
            for k, width in enumerate(q.acc_widths):
                low, high = accumulator_bounds(op, k)
                if not -(1 << (width - 1)) <= low <= high <= (1 << (width - 1)) - 1:
                    problems.append(
                        f"{op.name} factor {k}: a {width}-bit accumulator cannot hold {low}..{high}"
                    )
                if width > MAX_ACC_WIDTH:
                    problems.append(f"{op.name} factor {k}: {width}-bit accumulator exceeds 63")
        fmt = q.out_formats[-1]
    return problems


def verify(graph: Graph) -> list[str]:
    """Every broken invariant, as readable lines (empty when the graph is sound)."""
    return _problems(graph)
