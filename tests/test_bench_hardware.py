"""The sweep script's plan and its rendering of seeds, medians, and per-cycle comparisons."""

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_hardware", ROOT / "bench" / "hardware.py")
hardware = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = hardware  # dataclasses look their module up while the class is made
_spec.loader.exec_module(hardware)

ALL_BUDGETS = ["full", "8", "16", "24", "28", "56", "156"]


def row(model, budget, seed, *, ii, macs, fmax=None, clock=None, status="ok", board="ulx3s-85f"):
    return {
        "board": board,
        "model": model,
        "budget": budget,
        "seed": seed,
        "status": status,
        "ii": ii,
        "dsp": budget,
        "macs": macs,
        "multiplier_efficiency": 0.9,
        "fmax_mhz": fmax,
        "clock_mhz": clock,
        "clock_mode": "auto",
        "built": fmax is not None,
    }


def test_plan_default_seeds():
    plan = hardware.build_plan(
        ["ulx3s-85f", "ulx3s-25f"],
        list(hardware.MODELS),
        ALL_BUDGETS,
        [1, 2, 3],
        list(hardware.SEEDED_MODELS),
        list(hardware.SEEDED_BUDGETS),
    )
    # 85F: 6 budgets x 4 models, of which 3 models x {8, 28, 156} at 3 seeds: 9 x 3 + 15;
    # 25F (28 DSPs): 4 budgets x 4 models, of which 3 models x {8, 28} at 3 seeds: 6 x 3 + 10
    assert len(plan) == 42 + 28 == len(set(plan))
    seeds = {}
    for board, model, budget, seed in plan:
        seeds.setdefault((board, model, budget), []).append(seed)
    assert seeds["ulx3s-85f", "dense", 156] == [1, 2, 3]
    assert seeds["ulx3s-85f", "debut_small", 8] == [1, 2, 3]
    assert seeds["ulx3s-25f", "debut", 28] == [1, 2, 3]
    assert seeds["ulx3s-85f", "butterfly", 8] == [1]
    assert seeds["ulx3s-85f", "debut", 16] == [1]
    assert seeds["ulx3s-85f", "dense", 24] == [1]
    assert ("ulx3s-25f", "dense", 56) not in seeds
    assert plan[0][:3] == ("ulx3s-85f", "dense", 156)  # largest budget first


def test_plan_full_seeded_budget():
    plan = hardware.build_plan(["ulx3s-25f"], ["debut"], ["full", "8"], [4, 5], ["debut"], ["full"])
    assert plan == [
        ("ulx3s-25f", "debut", 28, 4),
        ("ulx3s-25f", "debut", 28, 5),
        ("ulx3s-25f", "debut", 8, 4),
    ]


def test_budget_arg():
    assert hardware.budget_arg("full") == "full"
    assert hardware.budget_arg("28") == "28"
    with pytest.raises(
        argparse.ArgumentTypeError,
        match=r"^a budget must be 'full' or a positive number of DSPs, not '0'$",
    ):
        hardware.budget_arg("0")


def test_design_medians():
    rows = [
        row("debut", 28, 3, ii=235, macs=5888, fmax=100.0, clock=87.5),
        row("debut", 28, 1, ii=235, macs=5888, fmax=80.0, clock=75.0),
        row("debut", 28, 2, ii=235, macs=5888, fmax=90.0, clock=87.5),
        row("debut", 28, 4, ii=235, macs=5888, status="timing not met"),
        row("dense", 28, 1, ii=971, macs=25856, fmax=104.0, clock=100.0),
        row("dense", 28, 2, ii=971, macs=25856, fmax=96.0, clock=87.5),
    ]
    dense, debut = hardware.designs(rows)  # dense first, in the order of MODELS
    assert [r["seed"] for r in debut.builds] == [1, 2, 3]
    assert [r["seed"] for r in debut.failed] == [4]
    assert debut.fmax_mhz == 90.0 and debut.clock_mhz == 87.5
    assert debut.inferences_per_cycle == 1 / 235
    assert debut.inferences_per_s == pytest.approx(87.5e6 / 235)
    # two seeds: the lower middle, one build's own
    assert dense.fmax_mhz == 96.0 and dense.clock_mhz == 87.5


def test_cycle_table_and_clocks_apart():
    rows = [
        row("dense", 28, 1, ii=971, macs=25856, fmax=104.0, clock=100.0),
        row("debut", 28, 1, ii=235, macs=5888, fmax=80.0, clock=75.0),
    ]
    found = hardware.designs(rows)
    cycles = hardware.cycle_table(found).splitlines()
    assert "MHz" not in cycles[0]
    cells = [c.strip() for c in cycles[3].split("|")[1:-1]]
    assert cells == [
        "ulx3s-85f",
        "28",
        "debut",
        "28",
        "235",
        "4.26e-03",  # 1 / 235
        "1.52e-04",  # 1 / (235 x 28)
        "90.0%",
        "4.13",  # 971 / 235
        "4.39",  # 25856 / 5888
    ]
    clocks = hardware.clock_table(found).splitlines()
    cells = [c.strip() for c in clocks[3].split("|")[1:-1]]
    # seeds, Fmax by seed, median, clock by seed, median, mode, inf/s (75 MHz / 235), failed
    assert cells == [
        *("ulx3s-85f", "debut", "28", "1", "80.0", "80.0", "75", "75", "auto", "319,149", "-")
    ]
    (line,) = hardware.debut_vs_dense(found)
    # per cycle 4.13x against 0.8 x 4.39 = 3.51x; at 75 and 100 MHz, 4.13 x 0.75 = 3.10x
    assert "4.13x dense's inferences per cycle" in line and "3.51x): meets it per cycle" in line
    assert "3.10x its inferences/s: misses it." in line


def test_peer_clock_rule():
    # from the 25 MHz oscillator the PLL makes VCO / CLKOS_DIV, the VCO on multiples of 12.5 MHz
    # from 400 to 800; 2% to spare
    assert hardware.pll_clock_mhz(63.68, "ulx3s-85f") == 800 / 13  # 62.41 < 62.5
    assert hardware.pll_clock_mhz(64.0, "ulx3s-85f") == 62.5  # 62.72
    assert hardware.pll_clock_mhz(10.0, "ulx3s-85f") is None


def test_load_record_plan_without_seeds(tmp_path):
    record = {
        "command": "python bench/hardware.py",
        "plan": [["ulx3s-85f", "debut", 28], ["ulx3s-85f", "dense", 28]],
        "rows": [row("debut", 28, 2, ii=235, macs=5888)],
    }
    path = tmp_path / "hardware.json"
    path.write_text(json.dumps(record))
    loaded = hardware.load_record(path)
    assert loaded["plan"] == [("ulx3s-85f", "debut", 28, 2), ("ulx3s-85f", "dense", 28, 1)]
    assert loaded["rows"][0]["sweep"] == "python bench/hardware.py"
