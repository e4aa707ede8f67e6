"""Analytical resource model of factor stages against Yosys (ECP5) synthesis, side by side.

    .venv/bin/python bench/stage_resources.py [--json out.json]

Synthesises every factor stage of the shipped digits DeBut and dense models at several DSP
budgets (out of context, ``synth_ecp5``; no place and route) and prints the estimate beside the
measured cells: LUT4 (a carry cell counting as two, a LUT-RAM cell as six, as nextpnr counts
them before packing), FFs and DSPs. Then it fits the LUT weights of the estimate
(``hw.factor_stage.LUT_WEIGHTS``) to the measured counts by non-negative least squares, relative
error weighted, and prints them with the worst ratio they give. Not a test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from boards.yosys import synth_stats
from compiler import pipeline
from compiler.lower import lower
from debut.errors import ToolError
from hw.factor_stage import LUT_WEIGHTS

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def quantized_graph(name: str):
    """The shipped digits model ``name`` quantised as ``build`` quantises it."""
    state = pipeline.run(
        "build",
        EXAMPLES / f"digits_{name}.pt",
        pipeline.Options(),
        stop_after="quantize",
        write=False,
        progress=lambda line: None,
    )
    return state.quantized.graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--models", nargs="+", default=["debut", "dense"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[156, 28, 8])
    parser.add_argument(
        "--refit", type=Path, metavar="JSON", help="only fit the weights to a saved --json run"
    )
    args = parser.parse_args()
    if args.refit:
        fit_lut_weights(with_current_features(json.loads(args.refit.read_text())))
        return
    rows = []
    print(
        f"{'model':6} {'budget':>6} {'stage':8} {'M':>4} {'II':>5}  "
        f"{'LUT est':>8} {'LUT syn':>8} {'ratio':>6}  {'FF est':>7} {'FF syn':>7}  DSP"
    )
    for name in args.models:
        graph = quantized_graph(name)
        for budget in args.budgets:
            lowered = lower(graph, budget=budget, dsp="MULT18X18D")
            for plan, stage in zip(lowered.plans, lowered.network.stages, strict=True):
                est = stage.resources()
                features = stage.lut_features()
                try:
                    got = synth_stats(stage, name="stage")
                except ToolError:
                    got = synth_stats(stage, name="stage", mapper="abc")
                row = {
                    "model": name,
                    "budget": budget,
                    "stage": plan.name,
                    "factor": plan.factor.as_list(),
                    "multipliers": stage.multipliers,
                    "ii": stage.ii,
                    "estimate": est,
                    "lut_features": features,
                    "synth": {
                        "lut": got.lut4,
                        "ff": got.ff,
                        "dsp": got.dsp,
                        "ebr": got.ebr,
                        "lutram": got.lutram,
                        "cells": got.cells,
                    },
                    "synth_s": got.seconds,
                }
                rows.append(row)
                print(
                    f"{name:6} {budget:>6} {plan.name:8} {stage.multipliers:>4} {stage.ii:>5}  "
                    f"{est['lut']:>8} {got.lut4:>8} {est['lut'] / got.lut4:>6.2f}  "
                    f"{est['ff']:>7} {got.ff:>7}  {est['dsp']}/{got.dsp}",
                    flush=True,
                )
            lowered.discard()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    fit_lut_weights(rows)


def with_current_features(rows: list[dict]) -> list[dict]:
    """``rows`` with their LUT features recomputed by the current estimate (no synthesis)."""
    lowered = {}
    for row in rows:
        key = (row["model"], row["budget"])
        if key not in lowered:
            graph = quantized_graph(row["model"])
            lowered[key] = lower(graph, budget=row["budget"], dsp="MULT18X18D")
            lowered[key].discard()
        stages = dict(
            zip((p.name for p in lowered[key].plans), lowered[key].network.stages, strict=True)
        )
        row["lut_features"] = stages[row["stage"]].lut_features()
    return rows


def fit_lut_weights(rows: list[dict]) -> dict[str, float]:
    """Non-negative weights for the LUT features minimising the relative error over ``rows``."""
    keys = sorted(LUT_WEIGHTS)
    a = np.array([[row["lut_features"][k] for k in keys] for row in rows], dtype=float)
    b = np.array([row["synth"]["lut"] for row in rows], dtype=float)
    a, b = a / b[:, None], np.ones_like(b)  # relative error
    weights = np.zeros(len(keys))
    free = [k for k in range(len(keys)) if a[:, k].any()]  # unused features keep weight 0
    for _ in range(len(keys)):  # active-set NNLS: drop the most negative weight and refit
        solution = np.linalg.lstsq(a[:, free], b, rcond=None)[0]
        if (solution >= 0).all():
            break
        free.pop(int(np.argmin(solution)))
    weights[free] = solution
    ratios = (a @ weights) / b
    print("fitted LUT_WEIGHTS:")
    for k, w in zip(keys, weights, strict=True):
        print(f"    {k!r}: {w:.2f},")
    print(f"estimate / synthesis with them: {ratios.min():.2f} .. {ratios.max():.2f}")
    for k in np.argsort(np.abs(np.log(ratios)))[::-1][:4]:
        row = rows[k]
        print(f"  {row['model']} {row['budget']} {row['stage']}: {ratios[k]:.2f}")
    return dict(zip(keys, weights, strict=True))


if __name__ == "__main__":
    main()
