"""The shipped digits models (dense, DeBut, small DeBut, fixed butterfly) built for boards,
side by side.

    .venv/bin/python bench/hardware.py [--boards ulx3s-85f ulx3s-25f] [--models dense debut
        debut_small butterfly] [--budgets full 8 16 24 28 56 156] [--seed 1] [--no-synth]
        [--out bench/results]

Every model is built with ``python -m compiler build`` (the product's own path: quantise, lower,
fit check, RTL check, Yosys, nextpnr, pack) for each board at each DSP budget the board has
("full" is all of them: the fastest II that fits), with a fixed nextpnr seed, and the reports
are collected into one table: parameters, MACs, float and fixed accuracy, DSP/LUT/FF/EBR used,
clock and Fmax, II, latency, inferences/s, multiplier efficiency, inferences/s per DSP, and the
time of each build step. The device's peak (``bench/dsp_peak.py``: DSPs x the Fmax of one
registered multiply) gives the fraction of it each design reaches.

Writes ``OUT/hardware.json``, ``OUT/BENCHMARKS.md`` (with this command and the tool versions) and
two plots: inferences/s against DSPs, and accuracy against parameters. ``--no-synth`` stops at
the core (the estimates, no tools): minutes instead of hours. Not a test.

A whole sweep is hours of place and route, so ``hardware.json`` is rewritten after every build
(``"complete": false`` until the last), ``--jobs N`` runs N builds at once (nextpnr uses one
core), and ``--resume`` keeps the rows of an earlier run whose code fingerprint (the committed
trees of everything a build of that model runs, see :func:`code_fingerprint`) is the current
one: the same code, seeds and tools give the same bitstreams, so those rows are what this run
would measure again. ``--add`` keeps every row of ``OUT/hardware.json`` whatever code built it
and builds only the plan's missing rows (a model or budget added to finished results); every row
keeps the sweep command, commit and fingerprint it was built with, and ``BENCHMARKS.md`` lists
each command with the build code that changed between them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from boards.registry import get_board  # noqa: E402
from compiler.provenance import git_output, git_revision  # noqa: E402

EXAMPLES = ROOT / "examples"
MODELS = ("dense", "debut", "debut_small", "butterfly")
DEBUT_MODELS = ("debut", "debut_small")
# what a build runs besides its model file: the fingerprint of --resume covers these trees
BUILD_CODE = ("compiler", "hw", "boards", "sim", "pyproject.toml")
# the issue's target against the peer: DeBut's inferences/s over NNgen's, with no more DSPs
PEER_TARGET = 30


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
    with (files written before rows carried them have one for the whole run)."""
    record = json.loads(path.read_text())
    for row in record["rows"]:
        row.setdefault("sweep", record["command"])
        row.setdefault("fingerprint", record.get("fingerprint"))
    return record


def build_dir(out: Path, board: str, model: str, budget: int) -> Path:
    return out / "builds" / f"{board}-{model}-{budget}"


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


def table(rows: list[dict], peaks: dict[str, dict]) -> str:
    head = (
        "| board | model | budget | params | MACs | float acc | fixed acc | DSP | LUT4 | FF | EBR "
        "| clock MHz | Fmax MHz | II | latency | inf/s | MAC eff | inf/s/DSP | % of peak | status |"
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
            f"| {r['board']} | {r['model']} | {r['budget']} | {_fmt(r.get('params'), ',')} "
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
        "| board | model | budget | "
        + " | ".join(STEPS)
        + " | total s | Icarus vectors/s | Icarus cycles/s |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        steps = r.get("step_s") or {}
        lines.append(
            f"| {r['board']} | {r['model']} | {r['budget']} | "
            + " | ".join(_fmt(steps.get(step), ".1f") for step in STEPS)
            + f" | {r['wall_s']:.0f} | {_fmt(r.get('sim_vectors_per_s'), '.2f')} "
            f"| {_fmt(r.get('sim_cycles_per_s'), ',.0f')} |"
        )
    return "\n".join(lines)


def debut_vs_dense(rows: list[dict]) -> list[str]:
    """The issue's target per board and budget: DeBut inferences/s against
    0.8 x (dense MACs / DeBut MACs) x dense inferences/s."""
    out = []
    by = {(r["board"], r["budget"], r["model"]): r for r in rows}
    for (board, budget, model), r in by.items():
        dense = by.get((board, budget, "dense"))
        if model not in DEBUT_MODELS or not dense:
            continue
        if r.get("inferences_per_s") is None or dense.get("inferences_per_s") is None:
            continue
        bound = 0.8 * dense["macs"] / r["macs"] * dense["inferences_per_s"]
        ratio = r["inferences_per_s"] / dense["inferences_per_s"]
        verdict = "meets" if r["inferences_per_s"] >= bound else "misses"
        out.append(
            f"- {board}, {budget} DSPs: {model} {r['inferences_per_s']:,.0f} inf/s, dense "
            f"{dense['inferences_per_s']:,.0f} inf/s ({ratio:.2f}x; MAC ratio "
            f"{dense['macs'] / r['macs']:.2f}x): {verdict} 0.8 x the MAC ratio"
        )
    return out


def peer_section(rows: list[dict], peers: list[dict]) -> list[str]:
    """NNgen's dense digits MLP, one row per configuration measured, each followed by each of our
    DeBut models on the same device (the ULX3S-85F) with as many DSPs as NNgen uses or the
    fewest below: inferences per cycle (clock-free) and per second at each design's own Fmax."""
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
        "| design | DSP | LUT4 | FF | EBR | Fmax MHz | cycles/inference | MAC eff "
        "| inf/s at Fmax | inf/s/DSP | fixed acc |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    dense_macs = next((r["macs"] for r in rows if r["model"] == "dense" and r.get("macs")), None)
    ours = [
        r
        for r in rows
        if r["model"] in DEBUT_MODELS
        and r["board"] == "ulx3s-85f"
        and r.get("ii")
        and r.get("fmax_mhz")
    ]
    ratios = []
    for peer in peers:
        dsp, nn_rate = peer["dsp"], peer.get("inferences_per_s_at_fmax")
        lanes = peer["par_ich"] * peer["par_och"]
        lanes_efficiency = (
            dense_macs / (peer["cycles_per_inference"] * lanes) if dense_macs else None
        )
        lines.append(
            f"| NNgen 1.3.4, par_ich {peer['par_ich']} x par_och {peer['par_och']}, "
            f"AXI {peer['axi_width']} bits | {dsp} | {peer['lut']:,} | {peer['ff']:,} "
            f"| {peer['ebr']} | {peer['fmax_mhz']:.1f} | {peer['cycles_per_inference']:,} "
            f"| {_fmt(lanes_efficiency, '.1%')} | {_fmt(nn_rate, ',.0f')} "
            f"| {_fmt(peer.get('inferences_per_s_per_dsp'), ',.0f')} "
            f"| {peer['fixed_accuracy']:.2%} |"
        )
        for model in DEBUT_MODELS:
            fewer = [r for r in ours if r["model"] == model and r["dsp"] <= dsp]
            if not fewer:
                ratios.append(
                    f"- No {model} build on the 85F with at most {dsp} DSPs in these results "
                    f"(`--models {model} --budgets {dsp}` makes one)."
                )
                continue
            r = max(fewer, key=lambda r: r["dsp"])
            rate = r["fmax_mhz"] * 1e6 / r["ii"]
            lines.append(
                f"| ours, {model} ({r['macs']:,} MACs), {r['board']} | {r['dsp']} "
                f"| {r['lut']:,} | {r['ff']:,} | {r['ebr']} | {r['fmax_mhz']:.1f} | {r['ii']:,} "
                f"| {_fmt(r.get('multiplier_efficiency'), '.1%')} | {rate:,.0f} "
                f"| {rate / r['dsp']:,.0f} | {r['fixed_accuracy']:.2%} |"
            )
            if nn_rate:
                verdict = "meets" if rate >= PEER_TARGET * nn_rate else "misses"
                ratios.append(
                    f"- {model} at {r['dsp']} DSPs against NNgen at {dsp} (par "
                    f"{peer['par_ich']} x {peer['par_och']}, AXI {peer['axi_width']}): "
                    f"{peer['cycles_per_inference'] / r['ii']:.1f}x NNgen's inferences per cycle, "
                    f"{rate / nn_rate:.1f}x its inferences/s at each design's Fmax: {verdict} "
                    f"the {PEER_TARGET}x target."
                )
    return [*lines, "", *ratios]


def plots(rows: list[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for board in sorted({r["board"] for r in rows}):
        for model in MODELS:
            pts = sorted(
                (r.get("dsp") or r["multipliers"], r["inferences_per_s"])
                for r in rows
                if r["board"] == board and r["model"] == model and r.get("inferences_per_s")
            )
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=f"{model} ({board})")
    ax.set_xlabel("DSPs used")
    ax.set_ylabel("inferences/s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "inferences_vs_dsps.png")
    fig.savefig(paths[-1])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for model in MODELS:
        pts = {(r.get("params"), r.get("fixed_accuracy")) for r in rows if r["model"] == model}
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
    keys = record.get("plan") or [(r["board"], r["model"], r["budget"]) for r in record["rows"]]
    plan = [tuple(key) for key in keys]
    rows, peaks, complete = record["rows"], record["peaks"], record["complete"]
    order = {key: n for n, key in enumerate(plan)}
    rows.sort(key=lambda r: order.get((r["board"], r["model"], r["budget"]), len(order)))
    results = out / "hardware.json"
    tmp = results.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(results)
    pictures = plots(rows, out)
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
        *debut_vs_dense(rows),
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
            rows, [json.loads(p.read_text()) for p in sorted(peer_dir.glob("*/nngen.json"))]
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
        default=["full", "8", "16", "24", "28", "56", "156"],
        help="DSP budgets per board ('full': all its DSPs); 24 is NNgen's at par 4 x 4",
    )
    parser.add_argument("--seed", type=int, default=1)
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
            report = build_dir(args.out, row["board"], row["model"], row["budget"]) / "report.json"
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
        earlier = {(r["board"], r["model"], r["budget"], r.get("seed")): r for r in finished}
        print(f"keeping {len(earlier)} rows of {results}")

    peaks = {}
    if not args.no_synth:
        from bench.dsp_peak import measure

        for board in args.boards:
            if get_board(board).dsp_primitive:
                peaks[board] = measure(board, seed=args.seed)
                print(f"{board}: one registered multiply at {peaks[board]['dsp_fmax_mhz']:.1f} MHz")

    plan = []
    for board_name in args.boards:
        board = get_board(board_name)
        budgets = sorted({board.dsp if b == "full" else int(b) for b in args.budgets}, reverse=True)
        plan += [(board_name, m, b) for b in budgets if b <= board.dsp for m in args.models]

    if args.add:  # the earlier results' plan first, then what this run adds to it
        plan = [tuple(k) for k in old.get("plan") or []] + plan
        plan = list(dict.fromkeys(plan))
        peaks = {**old.get("peaks", {}), **peaks}
        rows = list(earlier.values())
    else:
        rows = [earlier[(*k, args.seed)] for k in plan if (*k, args.seed) in earlier]
    record = {"command": command, "commit": commit, "plan": plan, "peaks": peaks}
    record["complete"] = False
    # smaller builds first, so that a sweep stopped early has as many rows as it can; the
    # fixed-butterfly model (15 stages) takes far longest to place and route at every budget
    todo = sorted(
        (k for k in plan if (*k, args.seed) not in earlier),
        key=lambda k: (k[1] == "butterfly", k[2]),
    )
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        running = {
            pool.submit(
                build,
                model,
                board_name,
                budget,
                build_dir(args.out, board_name, model, budget),
                seed=args.seed,
                synth=not args.no_synth,
            )
            for board_name, model, budget in todo
        }
        for future in as_completed(running):
            row = future.result()
            row.update(sweep=command, commit=commit, fingerprint=fingerprints[row["model"]])
            rows.append(row)
            record.update(rows=rows, complete=False)
            write_results(record, args.out, args.peer)
            print(
                f"{row['board']:10} {row['model']:9} {row['budget']:4} DSPs: "
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
