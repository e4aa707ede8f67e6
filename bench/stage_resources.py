"""Analytical resource model of factor stages against Yosys (ECP5) synthesis, side by side.

    .venv/bin/python bench/stage_resources.py [--json out.json]

Synthesises every factor stage of the shipped digits DeBut and dense models at several DSP
budgets (out of context, ``synth_ecp5``; no place and route) and prints the estimate beside the
measured cells: LUT4 (a carry cell counting as two, a LUT-RAM cell as six, as nextpnr counts
them before packing), FFs and DSPs. Not a test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from boards.synth_stats import ToolError, synth_stats
from compiler.flow import quantize_model
from compiler.lower import lower

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--models", nargs="+", default=["debut", "dense"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[156, 28])
    args = parser.parse_args()
    rows = []
    print(
        f"{'model':6} {'budget':>6} {'stage':8} {'M':>4} {'II':>5}  "
        f"{'LUT est':>8} {'LUT syn':>8} {'ratio':>6}  {'FF est':>7} {'FF syn':>7}  DSP"
    )
    for name in args.models:
        q = quantize_model(EXAMPLES / f"digits_{name}.pt")
        for budget in args.budgets:
            lowered = lower(q.graph, budget=budget, dsp="MULT18X18D")
            for plan, stage in zip(lowered.plans, lowered.network.stages, strict=True):
                est = stage.resources()
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
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
