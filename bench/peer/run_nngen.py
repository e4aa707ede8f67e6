"""NNgen (PyPI ``nngen``) on the dense digits MLP, built with the same Yosys and nextpnr as ours.

    bash bench/peer/setup.sh          # once: .venv-nngen/ with NNgen and its pinned dependencies
    .venv/bin/python bench/peer/run_nngen.py [--par-ich 2] [--par-och 2] [--axi-width 32]
        [--seed 1] [--out bench/results/nngen/par2x2-axi32]

1. Exports ``examples/digits_dense.pt``'s float layers and the digits data (preprocessed as the
   model sees it) to ``OUT/weights.npz``.
2. Runs ``bench/peer/nngen_mlp.py`` in ``.venv-nngen``: NNgen's 8-bit quantiser, its software
   model for accuracy, its Verilog, and its own simulation (Icarus) for the cycles of one
   inference, checked against its software model.
3. Synthesises that Verilog with Yosys ``synth_ecp5`` and places and routes it out of context
   (``--out-of-context``: NNgen's AXI ports are not pinned) on the LFE5U-85F with nextpnr, fixed
   seed, at 100 MHz, and reads DSP/LUT/FF/EBR and Fmax.

Writes ``OUT/nngen.json`` with accuracy, resources, Fmax, cycles and inferences/s at Fmax, the
figures ``bench/hardware.py`` puts beside ours. Not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from boards.flow import DEFAULT_ROUTER, synthesize  # noqa: E402
from boards.nextpnr import parse_nextpnr_log  # noqa: E402
from boards.tools import find_tool  # noqa: E402

PEER_PYTHON = ROOT / ".venv-nngen" / "bin" / "python"
DEVICE = ("--85k", "--package", "CABGA381")


def export(out: Path) -> Path:
    from compiler.datasets import load_split
    from compiler.frontend.modelfile import load_model

    loaded = load_model(ROOT / "examples" / "digits_dense.pt")
    linears = [m for m in loaded.model.modules() if hasattr(m, "weight") and m.weight.ndim == 2]
    arrays = {}
    for k, layer in enumerate(linears):
        arrays[f"w{k}"] = layer.weight.detach().double().numpy()
        arrays[f"b{k}"] = layer.bias.detach().double().numpy()
    split = load_split(loaded.dataset)
    pre = loaded.preprocessing
    arrays["x_calib"] = pre.apply(split.x_train)
    arrays["x_test"] = pre.apply(split.x_test)
    arrays["y_test"] = split.y_test
    path = out / "weights.npz"
    np.savez(path, **arrays)
    return path


def place_and_route(out: Path, seed: int) -> dict:
    start = time.perf_counter()
    cells, mapper = synthesize(out, family="ecp5", top="nngen_mlp", source="nngen_mlp.v")
    synth_s = time.perf_counter() - start
    start = time.perf_counter()
    command = [find_tool("NEXTPNR_ECP5"), *DEVICE, "--json", "top.json", "--out-of-context"]
    command += ["--freq", "100", "--seed", str(seed), "--timing-allow-fail"]
    command += ["--router", DEFAULT_ROUTER]
    run = subprocess.run(command, cwd=out, capture_output=True, text=True)
    (out / "nextpnr.log").write_text(run.stdout + run.stderr)
    if run.returncode != 0:
        raise SystemExit(f"nextpnr failed on NNgen's design; see {out / 'nextpnr.log'}")
    report = parse_nextpnr_log(run.stdout + run.stderr)
    return {
        "yosys_cells": cells,
        "lut_mapper": mapper,
        "dsp": report.used("MULT18X18D"),
        "lut": report.used("TRELLIS_COMB"),
        "ff": report.used("TRELLIS_FF"),
        "ebr": report.used("DP16KD"),
        "fmax_mhz": report.main_fmax_mhz,
        "seed": seed,
        "step_s": {"synth": synth_s, "pnr": time.perf_counter() - start},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--par-ich", type=int, default=2)
    parser.add_argument("--par-och", type=int, default=2)
    parser.add_argument(
        "--axi-width",
        type=int,
        default=32,
        help="bits of NNgen's AXI master, which reads the weights and activations from memory",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--out",
        type=Path,
        help="where its files and nngen.json go (default: bench/results/nngen/parICHxOCH-axiW, "
        "where bench/hardware.py looks for every configuration)",
    )
    args = parser.parse_args()
    if args.out is None:
        config = f"par{args.par_ich}x{args.par_och}-axi{args.axi_width}"
        args.out = ROOT / "bench" / "results" / "nngen" / config
    if not PEER_PYTHON.is_file():
        raise SystemExit(f"{PEER_PYTHON} is missing: run bash bench/peer/setup.sh first")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    weights = export(out)
    print("NNgen: quantise, evaluate, generate Verilog, simulate one inference ...", flush=True)
    script = Path(__file__).with_name("nngen_mlp.py")
    subprocess.run(
        [
            str(PEER_PYTHON),
            str(script),
            str(weights),
            str(out),
            "--par-ich",
            str(args.par_ich),
            "--par-och",
            str(args.par_och),
            "--axi-width",
            str(args.axi_width),
        ],
        cwd=out,
        check=True,
    )
    result = json.loads((out / "nngen.json").read_text())
    print("Yosys and nextpnr (LFE5U-85F, out of context) ...", flush=True)
    result.update(place_and_route(out, args.seed))
    if result["cycles_per_inference"] and result["fmax_mhz"]:
        rate = result["fmax_mhz"] * 1e6 / result["cycles_per_inference"]
        result["inferences_per_s_at_fmax"] = rate
        result["inferences_per_s_per_dsp"] = rate / max(1, result["dsp"])
    (out / "nngen.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "yosys_cells"}, indent=1))


if __name__ == "__main__":
    main()
