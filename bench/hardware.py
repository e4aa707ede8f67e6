"""The shipped digits models (dense, DeBut, small DeBut, fixed butterfly) built for boards,
side by side.

    .venv/bin/python bench/hardware.py [--boards ulx3s-85f ulx3s-25f] [--models dense debut
        debut_small butterfly] [--budgets full 8 16 24 28 56 156] [--seeds 1 2 3]
        [--seeded-models dense debut debut_small] [--seeded-budgets 8 28 156] [--no-synth]
        [--out bench/results]

Every model is built with ``python -m compiler build`` (the product's own path: quantise, lower,
fit check, RTL check, Yosys, nextpnr, pack, at the board's clock: on the ULX3S, the automatic
one chosen from the routed design) for each board at each DSP budget the board has ("full" is
all of them: the fastest II that fits). The models of ``--seeded-models`` at the budgets of
``--seeded-budgets`` are built once per nextpnr seed of ``--seeds``, every other build at the
first seed only (by default: 3 seeds for dense and both DeBut models at 8, 28 and 156 DSPs, 1
elsewhere); ``--no-synth`` runs no nextpnr, so it builds each at the first seed only.

``hardware.json`` holds one row per build (with its seed): parameters, MACs, float and fixed
accuracy, DSP/LUT/FF/EBR used, the clock the build chose and its mode, Fmax, II, latency,
inferences/s, multiplier efficiency, inferences/s per DSP, and the time of each build step.
``BENCHMARKS.md`` compares each model at a board and budget (a design) in two tables kept apart,
so that an architecture's lead and its clock are not mixed: inferences per cycle (1 / II) at
equal DSPs with each model's ratio to dense, and the clocks: each seed's Fmax and chosen clock,
their medians, and inferences/s at the median clock. NNgen's configurations (``--peer``) are set
beside our DeBut models the same way. Then every build's row, and the device's peak
(``bench/dsp_peak.py``: DSPs x the Fmax of one registered multiply) with the fraction of it each
build reaches.

Writes ``OUT/hardware.json``, ``OUT/BENCHMARKS.md`` (with this command and the tool versions) and
two plots: inferences/s (at the median clock) against DSPs, and accuracy against parameters.
``--no-synth`` stops at the core (the estimates, no tools): minutes instead of hours. Not a test.

A whole sweep is hours of place and route, so ``hardware.json`` is rewritten after every build
(``"complete": false`` until the last), ``--jobs N`` runs N builds at once (nextpnr uses one
core), and ``--resume`` keeps the rows of an earlier run whose code fingerprint (the committed
trees of everything a build of that model runs, see :func:`code_fingerprint`) is the current
one: the same code, seeds and tools give the same bitstreams, so those rows are what this run
would measure again. ``--add`` keeps every row of ``OUT/hardware.json`` whatever code built it
and builds only the plan's missing rows (a model, budget or seed added to finished results).
Both know a row by its board, model, budget and seed. Every row keeps the sweep command, commit
and fingerprint it was built with, and ``BENCHMARKS.md`` lists each command with the build code
that changed between them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from boards.registry import get_board  # noqa: E402
from compiler.options import AUTO_MARGIN  # noqa: E402
from compiler.provenance import git_output, git_revision  # noqa: E402

EXAMPLES = ROOT / "examples"
MODELS = ("dense", "debut", "debut_small", "butterfly")
DEBUT_MODELS = ("debut", "debut_small")
# what a build runs besides its model file: the fingerprint of --resume covers these trees
BUILD_CODE = ("compiler", "hw", "boards", "sim", "pyproject.toml")
# the issue's target against the peer: DeBut's inferences/s over NNgen's, with no more DSPs
PEER_TARGET = 30
# the builds repeated at every seed of --seeds by default: the compared models at these budgets
SEEDED_MODELS = ("dense", "debut", "debut_small")
SEEDED_BUDGETS = ("8", "28", "156")


def model_file(model: str) -> Path:
    return EXAMPLES / f"digits_{model}.pt"


def code_fingerprint(model: str) -> str | None:
    """A hash of the committed trees of ``BUILD_CODE`` and of the model's file, or None when any
    of them has changes that are not committed (or is outside git): two builds of a model with
    the same fingerprint ran the same code, whatever else (documents, this script, the other
    models) changed between their commits."""
    paths = (*BUILD_CODE, str(model_file(model).relative_to(ROOT)))
    trees = git_output("rev-parse", *(f"HEAD:{path}" for path in paths))
    changed = git_output("status", "--porcelain", "--untracked-files=no", "--", *paths)
    if trees is None or changed is None or changed:
        return None
    return hashlib.sha1(trees.encode()).hexdigest()[:16]


def load_record(path: Path) -> dict:
    """``hardware.json``, its rows each with the sweep command and fingerprint they were built
    with (files written before rows carried them have one for the whole run), its plan as
    (board, model, budget, seed) builds (plans written before seeds were planned name no seed:
    their builds' own, 1 where none was built)."""
    record = json.loads(path.read_text())
    for row in record["rows"]:
        row.setdefault("sweep", record["command"])
        row.setdefault("fingerprint", record.get("fingerprint"))
    seeds = {row_key(r)[:3]: r["seed"] for r in record["rows"]}
    record["plan"] = [
        tuple(k) if len(k) == 4 else (*k, seeds.get(tuple(k), 1)) for k in record.get("plan") or []
    ]
    return record


def row_key(row: dict) -> tuple[str, str, int, int]:
    """What ``--resume``, ``--add`` and the plan know a build by."""
    return row["board"], row["model"], row["budget"], row["seed"]


def build_dir(out: Path, board: str, model: str, budget: int, seed: int) -> Path:
    return out / "builds" / f"{board}-{model}-{budget}-seed{seed}"


def budget_arg(text: str) -> str:
    """A DSP budget on the command line: "full" or a number of DSPs."""
    if text != "full" and not (text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(
            f"a budget must be 'full' or a positive number of DSPs, not {text!r}"
        )
    return text


def build_plan(
    boards: list[str],
    models: list[str],
    budgets: list[str],
    seeds: list[int],
    seeded_models: list[str],
    seeded_budgets: list[str],
) -> list[tuple[str, str, int, int]]:
    """The (board, model, budget, seed) builds of a sweep: on each board, each budget it has
    ("full": all its DSPs), largest first, each model; the models of ``seeded_models`` at the
    budgets of ``seeded_budgets`` once per seed of ``seeds``, every other build at the first."""
    plan = []
    for board_name in boards:
        board = get_board(board_name)
        mine = {board.dsp if b == "full" else int(b) for b in budgets}
        seeded = {board.dsp if b == "full" else int(b) for b in seeded_budgets}
        for budget in sorted((b for b in mine if b <= board.dsp), reverse=True):
            for model in models:
                repeated = model in seeded_models and budget in seeded
                plan += [(board_name, model, budget, s) for s in (seeds if repeated else seeds[:1])]
    return plan


def build(model: str, board: str, budget: int, out: Path, *, seed: int, synth: bool) -> dict:
    """Run `build` (in its own process) and return one row from its report (or the error it
    stopped with)."""
    args = ["build", str(model_file(model)), "--board", board]
    args += ["--dsp-budget", str(budget), "--seed", str(seed), "--out", str(out)]
    if not synth:
        args.append("--no-synth")
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "compiler", *args], cwd=ROOT, capture_output=True, text=True
    )
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")]
    row = {
        "model": model,
        "board": board,
        "budget": budget,
        "seed": seed,
        "command": "python -m compiler " + shlex.join(args).replace(f"{ROOT}/", ""),
        "status": "ok"
        if done.returncode == 0
        else (errors[-1].removeprefix("error: ") if errors else done.stderr.strip()[-300:]),
        "wall_s": time.perf_counter() - start,
    }
    report_path = out / "report.json"
    if not report_path.is_file():
        return row
    report = json.loads(report_path.read_text())
    model_s, quant, hw = report["model"], report["quant"] or {}, report["hardware"] or {}
    synth_s, thr = report.get("synth") or {}, report.get("throughput") or {}
    used = {cell: v["used"] for cell, v in (synth_s.get("utilization") or {}).items()}
    estimate = hw.get("estimate") or {}
    row.update(
        params=model_s["params"],
        macs=model_s["macs"],
        float_accuracy=quant.get("float_accuracy"),
        fixed_accuracy=quant.get("fixed_accuracy"),
        multipliers=hw.get("multipliers"),
        ii=hw.get("ii_cycles"),
        latency_cycles=hw.get("latency_cycles"),
        multiplier_efficiency=hw.get("multiplier_efficiency"),
        estimate=estimate,
        dsp=used.get("MULT18X18D", used.get("ICESTORM_DSP")),
        lut=used.get("TRELLIS_COMB", used.get("ICESTORM_LC")),
        ff=used.get("TRELLIS_FF"),
        ebr=used.get("DP16KD", 0) if used else None,
        clock_mhz=synth_s.get("clock_mhz"),
        clock_mode=synth_s.get("clock_mode"),
        fmax_mhz=synth_s.get("fmax_mhz"),
        timing_met=synth_s.get("timing_met"),
        inferences_per_s=thr.get("inferences_per_s"),
        inferences_per_s_per_dsp=thr.get("inferences_per_s_per_dsp"),
        macs_per_s=thr.get("macs_per_s"),
        step_s=report.get("time_per_step_s")
        or {**(hw.get("time_per_step_s") or {}), **(synth_s.get("time_per_step_s") or {})},
        tools=synth_s.get("tools"),
        built=bool(synth_s),
        **sim_speed(report),
    )
    if not synth and row["ii"]:  # --no-synth: the estimate, and a rate at a fixed board clock
        row.update(
            dsp=estimate.get("dsp"),
            lut=estimate.get("lut"),
            ff=estimate.get("ff"),
            ebr=estimate.get("ebr"),
        )
        clock = get_board(board).default_clock_mhz  # None: chosen from the routed design
        if clock is not None:
            rate = clock * 1e6 / row["ii"]
            row.update(
                clock_mhz=clock,
                inferences_per_s=rate,
                inferences_per_s_per_dsp=rate / row["multipliers"],
                macs_per_s=rate * row["macs"],
            )
    return row


def sim_speed(report: dict) -> dict:
    """Icarus's speed on the build's RTL check (the emitted core against the golden model)."""
    check = (report.get("synth") or {}).get("rtl_check") or {}
    rate = check.get("vectors_per_second")
    return {
        "sim_vectors_per_s": rate,
        "sim_cycles_per_s": rate * check["cycles_per_vector"] if rate else None,
    }


def _fmt(value, spec: str = "", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def _median(values: list[float]) -> float | None:
    """The median of ``values``; of an even count, the lower middle one, so that it is one
    build's own (a median clock is a clock the PLL makes). None when there are none."""
    return statistics.median_low(values) if values else None


@dataclass(frozen=True)
class Design:
    """One model at one DSP budget on one board, over the seeds it was built with: ``builds``
    are its rows that built (status ok), ``failed`` those that stopped with an error, each in
    seed order. II, resources and accuracy do not depend on the seed (nextpnr's placement
    alone does); Fmax and the clock chosen from it do, so those are medians over the seeds."""

    board: str
    model: str
    budget: int
    builds: tuple[dict, ...]
    failed: tuple[dict, ...]

    def first(self, key: str):
        """A figure that does not depend on the seed: its first build's."""
        return self.builds[0].get(key) if self.builds else None

    @property
    def ii(self) -> int | None:
        return self.first("ii")

    @property
    def inferences_per_cycle(self) -> float | None:
        return 1 / self.ii if self.ii else None

    @property
    def fmax_mhz(self) -> float | None:
        """The median of its builds' Fmax."""
        return _median([r["fmax_mhz"] for r in self.builds if r.get("fmax_mhz") is not None])

    @property
    def clock_mhz(self) -> float | None:
        """The median of the clocks its builds ran at."""
        return _median([r["clock_mhz"] for r in self.builds if r.get("clock_mhz") is not None])

    @property
    def inferences_per_s(self) -> float | None:
        """At the median clock."""
        clock = self.clock_mhz
        return clock * 1e6 / self.ii if clock and self.ii else None


def designs(rows: list[dict]) -> list[Design]:
    """``rows`` grouped by board, model and budget: by board (in the order of their first
    rows), budget (largest first) and model (in the order of ``MODELS``)."""
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["board"], r["model"], r["budget"]), []).append(r)
    boards = list(dict.fromkeys(r["board"] for r in rows))
    found = []
    for (board, model, budget), mine in groups.items():
        mine.sort(key=lambda r: r["seed"])
        ok = tuple(r for r in mine if r["status"] == "ok")
        failed = tuple(r for r in mine if r["status"] != "ok")
        found.append(Design(board, model, budget, ok, failed))
    order = {model: n for n, model in enumerate(MODELS)}
    found.sort(key=lambda d: (boards.index(d.board), -d.budget, order.get(d.model, len(order))))
    return found


def cycle_table(found: list[Design]) -> str:
    """Per cycle, at equal DSPs: each design that built, its inferences per cycle (1 / II),
    per cycle and DSP, and its lead per cycle over dense at the same budget (dense's II over its
    own) beside the ratio of their MACs. No clock enters it."""
    head = (
        "| board | budget | model | DSP | II | inferences/cycle | inferences/cycle/DSP | MAC eff "
        "| x dense per cycle | dense MACs / MACs |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    by = {(d.board, d.model, d.budget): d for d in found}
    for d in found:
        if not d.ii:
            continue
        dense = by.get((d.board, "dense", d.budget))
        lead = dense.ii / d.ii if dense and dense.ii else None
        macs = dense.first("macs") / d.first("macs") if dense and dense.ii else None
        dsp = d.first("dsp")
        lines.append(
            f"| {d.board} | {d.budget} | {d.model} | {_fmt(dsp)} | {d.ii:,} "
            f"| {d.inferences_per_cycle:.2e} "
            f"| {_fmt(d.inferences_per_cycle / dsp if dsp else None, '.2e')} "
            f"| {_fmt(d.first('multiplier_efficiency'), '.1%')} | {_fmt(lead, '.2f')} "
            f"| {_fmt(macs, '.2f')} |"
        )
    return "\n".join(lines)


def clock_table(found: list[Design]) -> str:
    """The clocks: each design's seeds, their Fmax and the clocks their builds chose (and how),
    the medians, and inferences/s at the median clock; the seeds whose builds failed."""
    head = (
        "| board | model | budget | seeds | Fmax MHz by seed | median Fmax MHz "
        "| clock MHz by seed | median clock MHz | clock | inf/s at median clock | failed |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for d in found:
        modes = {(r.get("clock_mode") or "-") if r.get("built") else "estimate" for r in d.builds}
        failed = "; ".join(f"seed {r['seed']}: {r['status'].split(';')[0][:60]}" for r in d.failed)
        lines.append(
            f"| {d.board} | {d.model} | {d.budget} "
            f"| {', '.join(str(r['seed']) for r in d.builds) or '-'} "
            f"| {', '.join(_fmt(r.get('fmax_mhz'), '.1f') for r in d.builds) or '-'} "
            f"| {_fmt(d.fmax_mhz, '.1f')} "
            f"| {', '.join(_fmt(r.get('clock_mhz'), 'g') for r in d.builds) or '-'} "
            f"| {_fmt(d.clock_mhz, 'g')} | {', '.join(sorted(modes)) or '-'} "
            f"| {_fmt(d.inferences_per_s, ',.0f')} | {failed or '-'} |"
        )
    return "\n".join(lines)


def table(rows: list[dict], peaks: dict[str, dict]) -> str:
    head = (
        "| board | model | budget | seed | params | MACs | float acc | fixed acc | DSP | LUT4 "
        "| FF | EBR | clock MHz | Fmax MHz | II | latency | inf/s | MAC eff | inf/s/DSP "
        "| % of peak | status |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        peak = peaks.get(r["board"], {}).get("peak_macs_per_s")
        fraction = (
            100 * r["macs_per_s"] / peak if peak and r.get("macs_per_s") is not None else None
        )
        status = "ok" if r["status"] == "ok" else r["status"].split(";")[0][:80]
        estimated = r["status"] == "ok" and not r.get("built")  # --no-synth
        lines.append(
            f"| {r['board']} | {r['model']} | {r['budget']} | {r['seed']} "
            f"| {_fmt(r.get('params'), ',')} "
            f"| {_fmt(r.get('macs'), ',')} | {_fmt(r.get('float_accuracy'), '.2%')} "
            f"| {_fmt(r.get('fixed_accuracy'), '.2%')} | {_fmt(r.get('dsp'))} "
            f"| {_fmt(r.get('lut'), ',')} | {_fmt(r.get('ff'), ',')} | {_fmt(r.get('ebr'))} "
            f"| {_fmt(r.get('clock_mhz'), 'g')}{'*' if estimated else ''} "
            f"| {_fmt(r.get('fmax_mhz'), '.1f')} "
            f"| {_fmt(r.get('ii'))} | {_fmt(r.get('latency_cycles'))} "
            f"| {_fmt(r.get('inferences_per_s'), ',.0f')} "
            f"| {_fmt(r.get('multiplier_efficiency'), '.1%')} "
            f"| {_fmt(r.get('inferences_per_s_per_dsp'), ',.0f')} | {_fmt(fraction, '.1f')} "
            f"| {status} |"
        )
    return "\n".join(lines)


STEPS = ("quantize", "lower", "verilog", "check", "elaborate", "synth", "pnr", "pack")


def step_table(rows: list[dict]) -> str:
    """Compile-side speed: the seconds of each build step, and Icarus's speed on the RTL check."""
    head = (
        "| board | model | budget | seed | "
        + " | ".join(STEPS)
        + " | total s | Icarus vectors/s | Icarus cycles/s |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        steps = r.get("step_s") or {}
        lines.append(
            f"| {r['board']} | {r['model']} | {r['budget']} | {r['seed']} | "
            + " | ".join(_fmt(steps.get(step), ".1f") for step in STEPS)
            + f" | {r['wall_s']:.0f} | {_fmt(r.get('sim_vectors_per_s'), '.2f')} "
            f"| {_fmt(r.get('sim_cycles_per_s'), ',.0f')} |"
        )
    return "\n".join(lines)


def debut_vs_dense(found: list[Design]) -> list[str]:
    """The issue's target per board and budget, DeBut's inferences/s at least 0.8 x (dense MACs
    / DeBut MACs) x dense's, taken apart: DeBut's lead per cycle (dense's II over its own)
    against 0.8 x the MAC ratio, then at the two designs' median clocks."""
    out = []
    by = {(d.board, d.model, d.budget): d for d in found}
    for d in found:
        dense = by.get((d.board, "dense", d.budget))
        if d.model not in DEBUT_MODELS or not d.ii or not dense or not dense.ii:
            continue
        bound = 0.8 * dense.first("macs") / d.first("macs")
        lead = dense.ii / d.ii
        line = (
            f"- {d.board}, {d.budget} DSPs: {d.model} {lead:.2f}x dense's inferences per cycle "
            f"(II {d.ii:,} against {dense.ii:,}; 0.8 x the MAC ratio: {bound:.2f}x): "
            f"{'meets' if lead >= bound else 'misses'} it per cycle"
        )
        if d.clock_mhz and dense.clock_mhz:
            rate = lead * d.clock_mhz / dense.clock_mhz
            line += (
                f"; at the median clocks, {d.clock_mhz:g} and {dense.clock_mhz:g} MHz (median "
                f"Fmax {_fmt(d.fmax_mhz, '.1f')} and {_fmt(dense.fmax_mhz, '.1f')}), "
                f"{rate:.2f}x its inferences/s: {'meets' if rate >= bound else 'misses'} it"
            )
        out.append(line + ".")
    return out


def pll_clock_mhz(fmax_mhz: float, board_name: str) -> float | None:
    """The clock ``compiler build``'s automatic clock chooses on ``board_name`` for a routed
    design that reaches ``fmax_mhz``: the fastest its PLL makes from the board's oscillator
    with ``AUTO_MARGIN`` to spare; None when there is none."""
    from boards.pll import ecp5_pll_frequencies

    limit = fmax_mhz * (1 - AUTO_MARGIN)
    below = [f for f in ecp5_pll_frequencies(get_board(board_name).clock_mhz) if f <= limit]
    return below[-1] if below else None


PEER_BOARD = "ulx3s-85f"  # NNgen's device, the LFE5U-85F


def peer_section(found: list[Design], peers: list[dict]) -> list[str]:
    """NNgen's dense digits MLP, one row per configuration measured, each followed by each of our
    DeBut models on the same device (the ULX3S-85F) with as many DSPs as NNgen uses or the
    fewest below: per cycle (cycles per inference, inferences per cycle, MAC efficiency, lead
    over NNgen), then apart from those the clocks (Fmax: ours the median over the seeds; the
    clock: ours the median chosen, NNgen's the one our automatic clock would choose for it) and
    inferences/s at each."""
    peers = sorted(
        (p for p in peers if p.get("cycles_per_inference") and p.get("dsp")),  # simulated, built
        key=lambda p: (p["dsp"], p["axi_width"]),
    )
    if not peers:
        return []
    lines = [
        "",
        "## Peer: NNgen, dense digits MLP (8-bit), same Yosys/nextpnr, LFE5U-85F out of context",
        "",
        "Produced by (after `bash bench/peer/setup.sh`), one run per configuration:",
        "",
        *(
            f"    .venv/bin/python bench/peer/run_nngen.py --par-ich {p['par_ich']} "
            f"--par-och {p['par_och']} --axi-width {p['axi_width']} --seed {p['seed']}"
            for p in peers
        ),
        "",
        "NNgen reads its weights and activations over its AXI master from memory (in its "
        "simulation, veriloggen's AXI memory model); ours keeps them on chip. MAC eff is the "
        "model's MACs over cycles x multiply lanes (NNgen: par_ich x par_och lanes; ours: one "
        "per multiplier of the core). Per cycle, DeBut's lead over a dense design with as many "
        "lanes is at most the MAC ratio times the two efficiencies' ratio.",
        "",
        "The columns up to `x NNgen per cycle` are per cycle (no clock enters them); the clocks "
        "follow apart. Ours: the median Fmax over the seeds and the median of the clocks the "
        "builds chose. NNgen is placed and routed out of context (one seed) with no PLL: its "
        "clock is the one our automatic clock would choose for its Fmax (the fastest the "
        f"{PEER_BOARD}'s PLL makes from its oscillator with {AUTO_MARGIN:.0%} to spare).",
        "",
        "| design | DSP | LUT4 | FF | EBR | fixed acc | cycles/inference | inferences/cycle "
        "| MAC eff | x NNgen per cycle | Fmax MHz | clock MHz | inf/s at Fmax | inf/s at clock |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    dense_macs = next((d.first("macs") for d in found if d.model == "dense" and d.ii), None)
    ours = [
        d
        for d in found
        if d.model in DEBUT_MODELS and d.board == PEER_BOARD and d.ii and d.fmax_mhz
    ]
    ratios = []
    for peer in peers:
        dsp, cycles, fmax = peer["dsp"], peer["cycles_per_inference"], peer["fmax_mhz"]
        clock = pll_clock_mhz(fmax, PEER_BOARD)
        lanes = peer["par_ich"] * peer["par_och"]
        lanes_efficiency = dense_macs / (cycles * lanes) if dense_macs else None
        lines.append(
            f"| NNgen 1.3.4, par_ich {peer['par_ich']} x par_och {peer['par_och']}, "
            f"AXI {peer['axi_width']} bits | {dsp} | {peer['lut']:,} | {peer['ff']:,} "
            f"| {peer['ebr']} | {peer['fixed_accuracy']:.2%} | {cycles:,} | {1 / cycles:.2e} "
            f"| {_fmt(lanes_efficiency, '.1%')} | 1.0 | {fmax:.1f} | {_fmt(clock, 'g')} "
            f"| {fmax * 1e6 / cycles:,.0f} "
            f"| {_fmt(clock * 1e6 / cycles if clock else None, ',.0f')} |"
        )
        for model in DEBUT_MODELS:
            fewer = [d for d in ours if d.model == model and d.first("dsp") <= dsp]
            if not fewer:
                ratios.append(
                    f"- No {model} build on the 85F with at most {dsp} DSPs in these results "
                    f"(`--models {model} --budgets {dsp}` makes one)."
                )
                continue
            d = max(fewer, key=lambda d: d.first("dsp"))
            lead = cycles / d.ii
            at_fmax = d.fmax_mhz * 1e6 / d.ii
            lines.append(
                f"| ours, {model} ({d.first('macs'):,} MACs), {d.board}, "
                f"{len(d.builds)} seed{'s' if len(d.builds) > 1 else ''} | {d.first('dsp')} "
                f"| {d.first('lut'):,} | {d.first('ff'):,} | {d.first('ebr')} "
                f"| {d.first('fixed_accuracy'):.2%} | {d.ii:,} | {d.inferences_per_cycle:.2e} "
                f"| {_fmt(d.first('multiplier_efficiency'), '.1%')} | {lead:.1f} "
                f"| {d.fmax_mhz:.1f} | {_fmt(d.clock_mhz, 'g')} | {at_fmax:,.0f} "
                f"| {_fmt(d.inferences_per_s, ',.0f')} |"
            )
            rate = lead * d.fmax_mhz / fmax
            verdict = "meets" if rate >= PEER_TARGET else "misses"
            clocks = (
                f", clocks {d.clock_mhz:g} against {clock:g} MHz "
                f"({lead * d.clock_mhz / clock:.1f}x its inferences/s at them)"
                if d.clock_mhz and clock
                else ""
            )
            ratios.append(
                f"- {model} at {d.first('dsp')} DSPs against NNgen at {dsp} (par "
                f"{peer['par_ich']} x {peer['par_och']}, AXI {peer['axi_width']}): {lead:.1f}x "
                f"NNgen's inferences per cycle. Apart from that: Fmax {d.fmax_mhz:.1f} against "
                f"{fmax:.1f} MHz ({d.fmax_mhz / fmax:.2f}x){clocks}; at each design's Fmax, "
                f"{rate:.1f}x its inferences/s: {verdict} the {PEER_TARGET}x target."
            )
    return [*lines, "", *ratios]


def plots(found: list[Design], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for board in dict.fromkeys(d.board for d in found):
        for model in MODELS:
            pts = sorted(
                (d.first("dsp") or d.first("multipliers"), d.inferences_per_s)
                for d in found
                if d.board == board and d.model == model and d.inferences_per_s
            )
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=f"{model} ({board})")
    ax.set_xlabel("DSPs used")
    ax.set_ylabel("inferences/s at the median clock")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if ax.lines:  # none without a clock (--no-synth on a board that chooses its own)
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "inferences_vs_dsps.png")
    fig.savefig(paths[-1])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for model in MODELS:
        pts = {(d.first("params"), d.first("fixed_accuracy")) for d in found if d.model == model}
        pts = [p for p in pts if None not in p]
        if pts:
            ax.scatter(*zip(*pts, strict=True), label=model)
    ax.set_xlabel("parameters")
    ax.set_ylabel("fixed-point test accuracy")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    paths.append(out / "accuracy_vs_params.png")
    fig.savefig(paths[-1])
    plt.close(fig)
    return paths


def provenance(rows: list[dict]) -> list[str]:
    """Each sweep command of the rows, with the models it built, its commits and
    code fingerprints, and the build code that changed since the command before it."""
    sweeps: dict[str, list[dict]] = {}
    for r in rows:
        sweeps.setdefault(r["sweep"], []).append(r)
    lines, before = [], None
    for command, mine in sweeps.items():
        commits = sorted({r["commit"] for r in mine})
        models = ", ".join(m for m in MODELS if any(r["model"] == m for r in mine))
        lines += [
            f"    .venv/bin/{command}",
            "",
            f"built {len(mine)} rows ({models}) at commit {', '.join(commits)}, "
            f"build code fingerprints {', '.join(sorted({str(r['fingerprint']) for r in mine}))}.",
        ]
        if before:
            # every commit of a sweep has the same build code (its rows share fingerprints)
            first = commits[0].removesuffix("-dirty")
            changed = git_output("diff", "--name-only", before, first, "--", *BUILD_CODE)
            lines.append(
                "Build code changed since the command above: "
                + (", ".join(f"`{f}`" for f in changed.split()) if changed else "none")
                + "."
                if changed is not None
                else "The commits are not in this clone: no comparison of their build code."
            )
        lines.append("")
        before = commits[-1].removesuffix("-dirty")
    return lines


def write_results(record: dict, out: Path, peer_dir: Path) -> None:
    """Write ``out/hardware.json`` (``record``: the last run's command and commit, ``complete``,
    ``plan``, ``peaks`` and ``rows``), the plots and ``out/BENCHMARKS.md``."""
    plan = [tuple(key) for key in record.get("plan") or map(row_key, record["rows"])]
    rows, peaks, complete = record["rows"], record["peaks"], record["complete"]
    order = {key: n for n, key in enumerate(plan)}
    rows.sort(key=lambda r: order.get(row_key(r), len(order)))
    results = out / "hardware.json"
    tmp = results.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(results)
    found = designs(rows)
    pictures = plots(found, out)
    tools = next((r["tools"] for r in rows if r.get("tools")), {})
    text = [
        "# Benchmarks: the shipped digits models on boards",
        "",
        *(
            []
            if complete
            else [
                f"**Partial run: {len(rows)} of {len(plan)} builds so far** (this file is "
                "rewritten after every build; `--resume` or `--add` carries on from the builds "
                "done).",
                "",
            ]
        ),
        "Produced by (from the repository root, after `bash setup.sh`):",
        "",
        *provenance(rows),
        f"Machine: {platform.machine()}, Python {platform.python_version()}; tools: "
        + ", ".join(f"{k} {v}" for k, v in tools.items()),
        "",
        "A design is one model at one DSP budget on one board, built once per nextpnr seed. "
        "Its lead per cycle is its architecture's and its clock is its routing's: the two "
        "tables below keep them apart.",
        "",
        "## Per cycle, at equal DSPs",
        "",
        "Inferences per cycle are 1 / II (the cycles between inferences, the same for every "
        "seed); `x dense per cycle` is dense's II over the model's at the same budget, beside "
        "the ratio of their MACs.",
        "",
        cycle_table(found),
        "",
        "## Clocks",
        "",
        "Fmax is nextpnr's for the routed design; the clock is the one the build ran at "
        "(`auto`: the fastest the PLL makes below the Fmax less "
        f"{AUTO_MARGIN:.0%}; `fixed`: the board's or the one asked for; `estimate`: not built, "
        "the board's default clock). Medians are over the design's seeds (of an even number "
        "of seeds, the lower middle one); inferences/s are at the median clock.",
        "",
        clock_table(found),
        "",
        *debut_vs_dense(found),
        "",
        "## Every build",
        "",
        "Each row is one `python -m compiler build` (the command is in `hardware.json`); "
        "inferences/s are at the build's clock, Fmax is nextpnr's for the routed design.",
        "",
        table(rows, peaks),
        "",
        *(
            [
                "\\* not built (`--no-synth`): resources are the compiler's estimates and "
                "the rate is at the board's default clock."
            ]
            if any(r["status"] == "ok" and not r.get("built") for r in rows)
            else []
        ),
        "",
        *(
            f"- device peak, {b}: {p['dsp']} DSPs x {p['dsp_fmax_mhz']:.1f} MHz (one "
            f"registered MULT18X18D) = {p['peak_macs_per_s'] / 1e9:.2f} GMAC/s"
            for b, p in peaks.items()
        ),
        "",
        *(f"![{p.stem}]({p.name})" for p in pictures),
        "",
        "## Compile-side speed",
        "",
        "Seconds per build step (`check` is the emitted core in Icarus against the golden "
        "model, 16 vectors; `pnr` is nextpnr) and Icarus's speed on that check. With `--jobs` "
        "above 1, builds ran side by side and shared the machine's cores.",
        "",
        step_table(rows),
        *peer_section(
            found, [json.loads(p.read_text()) for p in sorted(peer_dir.glob("*/nngen.json"))]
        ),
        "",
    ]
    (out / "BENCHMARKS.md").write_text("\n".join(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boards", nargs="+", default=["ulx3s-85f", "ulx3s-25f"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument(
        "--budgets",
        nargs="+",
        type=budget_arg,
        default=["full", "8", "16", "24", "28", "56", "156"],
        help="DSP budgets per board ('full': all its DSPs); 24 is NNgen's at par 4 x 4",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[1, 2, 3],
        help="nextpnr seeds: the builds of --seeded-models at --seeded-budgets run once per "
        "seed, every other build at the first (default: 1 2 3)",
    )
    parser.add_argument(
        "--seeded-models",
        nargs="+",
        default=list(SEEDED_MODELS),
        choices=MODELS,
        help=f"the models built at every seed (default: {' '.join(SEEDED_MODELS)})",
    )
    parser.add_argument(
        "--seeded-budgets",
        nargs="+",
        type=budget_arg,
        default=list(SEEDED_BUDGETS),
        help=f"the budgets at which they are (default: {' '.join(SEEDED_BUDGETS)}; 'full': all "
        "a board's DSPs)",
    )
    parser.add_argument("--no-synth", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--peer",
        type=Path,
        default=ROOT / "bench" / "results" / "nngen",
        help="NNgen's figures: every PEER/*/nngen.json written by bench/peer/run_nngen.py",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="builds run at once (nextpnr takes one core each)"
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="only rewrite OUT/BENCHMARKS.md and the plots from OUT/hardware.json (no builds)",
    )
    keep = parser.add_mutually_exclusive_group()
    keep.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows of OUT/hardware.json built from the same code (fingerprint) and "
        "build the rest of the plan",
    )
    keep.add_argument(
        "--add",
        action="store_true",
        help="keep every row of OUT/hardware.json, whatever code built it (each keeps its "
        "command, commit and fingerprint), and build only the plan's missing rows",
    )
    args = parser.parse_args()
    # the command that reproduces the figures: without --resume, --add and --jobs (how it ran)
    shown, skip = [], False
    for arg in sys.argv[1:]:
        if not skip and arg not in ("--resume", "--add") and not arg.startswith("--jobs"):
            shown.append(arg)
        skip = arg == "--jobs"
    command = "python bench/hardware.py " + shlex.join(shown)
    commit = git_revision() or "unknown"  # the code every build of this run imports
    fingerprints = {model: code_fingerprint(model) for model in MODELS}
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "hardware.json"

    if args.render:
        record = load_record(results)
        for row in record["rows"]:  # rows from before the simulation speed was collected
            # (and before the seed was in a build's folder name)
            report = args.out / "builds" / f"{row['board']}-{row['model']}-{row['budget']}"
            report /= "report.json"
            if "sim_vectors_per_s" not in row and report.is_file():
                row.update(sim_speed(json.loads(report.read_text())))
        write_results(record, args.out, args.peer)
        return

    earlier, old = {}, {}
    if args.resume or args.add:
        if not results.is_file():
            sys.exit(f"--{'resume' if args.resume else 'add'}: there is no {results}")
        old = load_record(results)
        # interrupted builds stopped before they finished: built again
        finished = [r for r in old["rows"] if not r["status"].endswith("interrupted")]
        if args.resume:
            finished = [
                r
                for r in finished
                if r["fingerprint"] is not None and r["fingerprint"] == fingerprints[r["model"]]
            ]
        earlier = {row_key(r): r for r in finished}
        print(f"keeping {len(earlier)} rows of {results}")

    # --no-synth runs no nextpnr: one build per model and budget, at the first seed
    seeds = list(dict.fromkeys(args.seeds))[: 1 if args.no_synth else None]
    peaks = {}
    if not args.no_synth:
        from bench.dsp_peak import measure

        for board in args.boards:
            if get_board(board).dsp_primitive:
                peaks[board] = measure(board, seed=seeds[0])
                print(f"{board}: one registered multiply at {peaks[board]['dsp_fmax_mhz']:.1f} MHz")

    plan = build_plan(
        args.boards, args.models, args.budgets, seeds, args.seeded_models, args.seeded_budgets
    )
    if args.add:  # the earlier results' plan first, then what this run adds to it
        plan = list(dict.fromkeys([*old["plan"], *plan]))
        peaks = {**old.get("peaks", {}), **peaks}
        rows = list(earlier.values())
    else:
        rows = [earlier[k] for k in plan if k in earlier]
    record = {"command": command, "commit": commit, "plan": plan, "peaks": peaks}
    record["complete"] = False
    # smaller builds first, so that a sweep stopped early has as many rows as it can, and every
    # design at its first seed before the repeats; the fixed-butterfly model (15 stages) takes
    # far longest to place and route at every budget
    todo = sorted(
        (k for k in plan if k not in earlier),
        key=lambda k: (k[1] == "butterfly", k[3] != seeds[0], k[2]),
    )
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        running = {
            pool.submit(
                build,
                model,
                board_name,
                budget,
                build_dir(args.out, board_name, model, budget, seed),
                seed=seed,
                synth=not args.no_synth,
            )
            for board_name, model, budget, seed in todo
        }
        for future in as_completed(running):
            row = future.result()
            row.update(sweep=command, commit=commit, fingerprint=fingerprints[row["model"]])
            rows.append(row)
            record.update(rows=rows, complete=False)
            write_results(record, args.out, args.peer)
            print(
                f"{row['board']:10} {row['model']:11} {row['budget']:4} DSPs seed "
                f"{row['seed']}: "
                f"{row['status'][:60]:60} II {_fmt(row.get('ii')):>5}  "
                f"Fmax {_fmt(row.get('fmax_mhz'), '.1f'):>6}  "
                f"{_fmt(row.get('inferences_per_s'), ',.0f'):>10} inf/s  "
                f"({row['wall_s']:.0f} s)",
                flush=True,
            )
    record.update(rows=rows, complete=True)
    write_results(record, args.out, args.peer)
    print(f"wrote {args.out / 'hardware.json'}, {args.out / 'BENCHMARKS.md'} and the plots")


if __name__ == "__main__":
    main()
