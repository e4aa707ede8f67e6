"""Simulator speed on the shipped digits cores: Verilator against Icarus, side by side in one run.

    .venv/bin/python bench/simulators.py [--cores debut:8 debut:28 debut:156 dense:156]
        [--verilator-vectors 1000] [--icarus-vectors 16] [--out bench/results]

Each core (``model:budget`` on the ULX3S-85F, 8-bit) is built through its Verilog with the
product's own pipeline, then simulated with the ``sim`` command's testbench (random input idles
and output backpressure, every element checked) in each simulator: Verilator into a fresh model
cache (its run-time library built first, once, and timed apart), then again from the cache;
Icarus from scratch. Per simulator and core: compile seconds, vectors/s, simulated cycles/s
(clock cycles over the testbench's wall time), the model's C++ optimisation and the wall time
of the whole run.

First, the ``sim`` command itself on the 156-DSP DeBut core (``--verilator-vectors`` vectors)
into a clean folder with an empty model cache, then again. Writes ``OUT/simulators.json`` and
``OUT/SIMULATORS.md`` (with this command, the machine and the tool versions). Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compiler import pipeline  # noqa: E402
from compiler.golden import run_integer  # noqa: E402
from compiler.options import Options  # noqa: E402
from compiler.provenance import git_revision  # noqa: E402
from compiler.verification import input_vectors  # noqa: E402
from sim import verilator  # noqa: E402
from sim.runner import run_sim  # noqa: E402

EXAMPLES = ROOT / "examples"
DEFAULT_CORES = ("debut:8", "debut:28", "debut:156", "dense:156")


def quiet(line: str) -> None:
    """Progress lines of the pipeline are not shown."""


def build_core(spec: str, out: Path):
    model, budget = spec.split(":")
    options = Options(board="ulx3s-85f", dsp_budget=int(budget))
    start = time.perf_counter()
    state = pipeline.run(
        "build",
        EXAMPLES / f"digits_{model}.pt",
        options,
        out=out / spec.replace(":", "-"),
        stop_after="verilog",
        progress=quiet,
    )
    return state, time.perf_counter() - start


def simulate(state, simulator: str, count: int, sim_dir: Path) -> dict:
    graph = state.quantized.graph
    vectors = input_vectors(graph, state.data.test, count, 0)
    expected = run_integer(graph, vectors).output
    interface = state.lowered.interface(graph)
    result = run_sim(
        state.verilog, interface, vectors, expected, sim_dir=sim_dir, simulator=simulator
    )
    if not result.passed:
        raise SystemExit(f"{simulator} on {state.verilog}: {result.mismatches} mismatches")
    bench = json.loads((sim_dir / "results.json").read_text())  # the bench's own timing
    return {
        "simulator": simulator,
        "vectors": result.vectors,
        "compile_s": round(result.compile_s, 2),
        "model_cached": result.model_cached,
        "optimization": result.optimization,
        "vectors_per_s": round(result.vectors_per_second, 2),
        "cycles_per_vector": round(result.cycles_per_vector, 2),
        "cycles": bench["cycles"],
        "cycles_per_s": round(bench["cycles"] / bench["sim_wall_s"]),
        "wall_s": round(result.wall_s, 2),
    }


def runtime_library(work: Path) -> float:
    """Build Verilator's run-time library into the (fresh) cache with a one-register core;
    returns the seconds it took."""
    core = work / "warmup.v"
    core.write_text(
        "module warmup(input clk, input d, output reg q);\n"
        "always @(posedge clk) q <= d;\nendmodule\n"
    )
    start = time.perf_counter()
    verilator.build_model([core], "warmup", log=work / "warmup.log")
    return time.perf_counter() - start


def sim_command(work: Path, vectors: int) -> list[float]:
    """Wall seconds of ``python -m compiler sim examples/digits_debut.pt --vectors N`` into a
    clean output folder with an empty model cache, then again (the model from the cache)."""
    env = {**os.environ, verilator.CACHE_ENV: str(work / "sim-command-cache")}
    out = work / "sim-command"
    command = [sys.executable, "-m", "compiler", "sim", str(EXAMPLES / "digits_debut.pt")]
    command += ["--vectors", str(vectors), "--out", str(out)]
    times = []
    for _ in range(2):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
        times.append(round(time.perf_counter() - start, 1))
    return times


def markdown(record: dict) -> str:
    lines = [
        "# Simulator speed: Verilator and Icarus on the shipped digits cores",
        "",
        "Produced by (from the repository root, after `bash setup.sh`):",
        "",
        f"    {record['command']}",
        "",
        f"at commit {record['commit']}.",
        "",
        f"Machine: {record['machine']}; {record['versions']}.",
        "",
        textwrap.fill(
            "Each core is the shipped model built for the ULX3S-85F at the given DSP budget "
            "(8-bit), simulated with the `sim` command's testbench (random input idles and "
            "output backpressure, 0.2 each; every output element compared with the golden "
            "model). Verilator's compile is into an empty model cache, its run-time library "
            f"already built (that took {record['runtime_library_s']:.1f} s, once per Verilator "
            "version and compiler); `cached` is a second run of the same core. `C++`: the "
            "model's optimisation, chosen by the length of the run (`-O0` up to "
            f"{verilator.SHORT_RUN_CYCLES:,} cycles, else `-Og`). cycles/s: simulated clock "
            "cycles over the testbench's wall time; `wall s` is the whole simulation, compile "
            "and start-up included.",
            width=100,
        ),
        "",
        textwrap.fill(
            f"`python -m compiler sim examples/digits_debut.pt --vectors {record['sim_vectors']}` "
            "(the 156-DSP core), into a clean output folder with an empty model cache: "
            f"{record['sim_command_s'][0]:.1f} s; again, the model from the cache: "
            f"{record['sim_command_s'][1]:.1f} s.",
            width=100,
        ),
        "",
        "| core | DSPs | II | Verilog s | simulator | C++ | vectors | compile s | vectors/s "
        "| cycles/s | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for core in record["cores"]:
        for run in core["runs"]:
            name = run["simulator"] + (" (cached)" if run["model_cached"] else "")
            lines.append(
                f"| {core['core']} | {core['multipliers']} | {core['ii']} | "
                f"{core['verilog_s']:.1f} | {name} | {run['optimization'] or '-'} | "
                f"{run['vectors']} | {run['compile_s']:.1f} | "
                f"{run['vectors_per_s']:,.1f} | {run['cycles_per_s']:,} | {run['wall_s']:.1f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", nargs="+", default=list(DEFAULT_CORES), metavar="MODEL:N")
    parser.add_argument("--verilator-vectors", type=int, default=1000)
    parser.add_argument("--icarus-vectors", type=int, default=16)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="debut-simbench-") as tmp:
        work = Path(tmp)
        os.environ[verilator.CACHE_ENV] = str(work / "cache")
        sim_s = sim_command(work, args.verilator_vectors)
        print(f"sim command: {sim_s[0]:.1f} s, then {sim_s[1]:.1f} s", flush=True)
        runtime_s = runtime_library(work)
        print(f"Verilator run-time library: {runtime_s:.1f} s (once)", flush=True)
        cores = []
        for spec in args.cores:
            state, verilog_s = build_core(spec, work)
            runs = [
                simulate(state, "verilator", args.verilator_vectors, work / spec / "v1"),
                simulate(state, "verilator", args.verilator_vectors, work / spec / "v2"),
                simulate(state, "icarus", args.icarus_vectors, work / spec / "icarus"),
            ]
            row = {
                "core": spec,
                "multipliers": state.lowered.network.multipliers,
                "ii": state.lowered.ii,
                "verilog_s": round(verilog_s, 2),
                "runs": runs,
            }
            cores.append(row)
            for run in runs:
                print(
                    f"{spec:>10} {run['simulator']:>9}{' (cached)' if run['model_cached'] else ''}"
                    f": compile {run['compile_s']:6.1f} s, {run['vectors_per_s']:8.1f} vectors/s, "
                    f"{run['cycles_per_s']:>8,} cycles/s, wall {run['wall_s']:6.1f} s",
                    flush=True,
                )
    record = {
        "command": shlex.join([".venv/bin/python", "bench/simulators.py", *sys.argv[1:]]),
        "commit": git_revision(),
        "machine": f"{platform.machine()}, {os.cpu_count()} processors, Python "
        f"{platform.python_version()}",
        "versions": ", ".join(
            f"{name} {version(name)}" for name in ("verilator", "cocotb", "amaranth")
        )
        + f", iverilog {_iverilog_version()}",
        "runtime_library_s": round(runtime_s, 2),
        "sim_vectors": args.verilator_vectors,
        "sim_command_s": sim_s,
        "cores": cores,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "simulators.json").write_text(json.dumps(record, indent=1) + "\n")
    (args.out / "SIMULATORS.md").write_text(markdown(record))
    print(f"wrote {args.out / 'simulators.json'} and {args.out / 'SIMULATORS.md'}")
    return 0


def _iverilog_version() -> str:
    done = subprocess.run(["iverilog", "-V"], capture_output=True, text=True, check=False)
    first = done.stdout.splitlines()[0] if done.stdout else ""
    parts = first.split()
    return parts[3] if len(parts) > 3 else "?"


if __name__ == "__main__":
    sys.exit(main())
