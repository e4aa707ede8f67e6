"""NNgen's accelerator for the dense digits MLP: run inside the NNgen environment
(``bench/peer/setup.sh``), driven by ``bench/peer/run_nngen.py``.

    python nngen_mlp.py WEIGHTS.npz OUTDIR [--par-ich 2] [--par-och 2] [--no-sim]

``WEIGHTS.npz`` (written by ``run_nngen.py`` from ``examples/digits_dense.pt``) holds the float
layers ``w0 b0 w1 b1 w2 b2`` and the digits data as the model sees it (``x_calib``, ``x_test``,
``y_test``, features in 0..1). Here:

1. the 64-128-128-10 MLP is described in NNgen with 8-bit activations and weights, and NNgen's
   own quantiser sets its scales and shifts from the calibration samples;
2. NNgen's own software model (``ng.eval``) gives the 8-bit accuracy on the test split;
3. ``to_verilog`` writes the accelerator (AXI4 master for data, AXI4-Lite for control);
4. unless ``--no-sim``: a testbench with an AXI memory model (veriloggen, Icarus) runs one
   inference and reads the cycles between start and done, and checks the hardware's output
   against ``ng.eval``.

Writes ``OUTDIR/nngen_mlp.v`` and ``OUTDIR/nngen.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import nngen as ng
import numpy as np

ACT = ng.int8
WEIGHT = ng.int8
INPUT_SCALE = 127  # features in 0..1 become 0..127
AXI_WIDTH = 32  # default width of the AXI master that reads weights and activations
CHUNK = 64


def build_graph(weights, par_ich: int, par_och: int):
    x = ng.placeholder(ACT, shape=(1, 64), name="x")
    layer, nodes = x, []
    for k in range(3):
        w = ng.variable(WEIGHT, shape=weights[f"w{k}"].shape, name=f"w{k}")
        b = ng.variable(ng.int32, shape=weights[f"b{k}"].shape, name=f"b{k}")
        w.set_value(weights[f"w{k}"])
        b.set_value(weights[f"b{k}"])
        layer = ng.matmul(
            layer,
            w,
            bias=b,
            transposed_b=True,
            act_func=ng.relu if k < 2 else None,
            sum_dtype=ng.int32,
            dtype=ACT,
            name=f"fc{k + 1}",
        )
        nodes.append(layer)
    calib = np.round(weights["x_calib"] * INPUT_SCALE).astype(np.int64)

    def samples(node, num_samples):
        return calib[: node.shape[0] * num_samples]

    ng.quantize(
        [layer],
        {"x": INPUT_SCALE},
        input_generators={"x": samples},
        num_samples=len(calib),
    )
    for node in nodes:
        node.attribute(par_ich=par_ich, par_och=par_och)
    return x, layer


def simulate(accel, x, out, x_value, expected, outdir: Path, axi_width: int) -> int:
    """Cycles of one inference of ``accel`` (NNgen's module) in Icarus, with the output checked
    against ``expected``."""
    import veriloggen.thread as vthread
    import veriloggen.types.axi as axi
    from veriloggen import Delay, Module, Not, Seq, Systask, simulation

    params = ng.export_ndarray([out], CHUNK)
    align = lambda addr: -(-addr // CHUNK) * CHUNK  # noqa: E731
    param_addr = align(x.addr + x.memory_size)
    check_addr = align(param_addr + len(params))
    work_addr = align(check_addr + out.memory_size)
    words = np.zeros(4 * 1024 * 1024 // 4, dtype=np.int64)
    axi.set_memory(words, x_value, 32, ACT.width, x.addr, max(axi_width // ACT.width, 1))
    axi.set_memory(words, params, 32, 8, param_addr)
    axi.set_memory(words, expected, 32, ACT.width, check_addr, max(axi_width // ACT.width, 1))

    tb = Module("tb")
    tb.copy_params(accel)
    ports = tb.copy_sim_ports(accel)
    clk, resetn = ports["CLK"], ports["RESETN"]
    rst = tb.Wire("RST")
    rst.assign(Not(resetn))
    memory = axi.AxiMemoryModel(
        tb, "memory", clk, rst, datawidth=axi_width, memimg=words, memimg_name="memimg.txt"
    )
    memory.connect(ports, "maxi")
    control = vthread.AXIMLite(tb, "control", clk, rst, noio=True)
    control.connect(ports, "saxi")
    cycle = tb.Reg("cycle", 32, initval=0)
    Seq(tb, "count", clk, rst)(cycle.inc())

    def program():
        ng.sim.set_global_addrs(control, work_addr)
        start = cycle.value
        ng.sim.start(control)
        ng.sim.wait(control)
        print("# cycles:", cycle.value - start)
        for n in range(out.shape[1]):
            got = memory.read_word(n, out.addr, ACT.width)
            want = memory.read_word(n, check_addr, ACT.width)
            if got != want:
                print("# mismatch", n, got, want)
        vthread.finish()

    vthread.Thread(tb, "program", clk, rst, program).start()
    tb.Instance(accel, "dut", params=tb.connect_params(accel), ports=tb.connect_ports(accel))
    simulation.setup_clock(tb, clk, hperiod=5)
    init = simulation.setup_reset(tb, resetn, tb.make_reset(), period=100, polarity="low")
    init.add(Delay(100_000_000), Systask("finish"))
    log = simulation.Simulator(tb, sim="iverilog").run(outputfile=str(outdir / "tb.out"))
    (outdir / "sim.log").write_text(log)
    if "# mismatch" in log or "# cycles:" not in log:
        raise SystemExit(f"NNgen simulation failed; see {outdir / 'sim.log'}")
    return int(log.split("# cycles:")[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--par-ich", type=int, default=2)
    parser.add_argument("--par-och", type=int, default=2)
    parser.add_argument("--axi-width", type=int, default=AXI_WIDTH, help="bits of the AXI master")
    parser.add_argument("--no-sim", action="store_true")
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    weights = dict(np.load(args.weights))
    np.random.seed(0)
    x, out = build_graph(weights, args.par_ich, args.par_och)

    x_test = np.round(weights["x_test"] * INPUT_SCALE).astype(np.int64)
    start = time.perf_counter()
    outputs = np.array([ng.eval([out], x=row[None, :])[0][0] for row in x_test])
    accuracy = float((outputs.argmax(axis=1) == weights["y_test"]).mean())
    eval_s = time.perf_counter() - start

    accel = ng.to_veriloggen(
        [out], "nngen_mlp", silent=True, config={"maxi_datawidth": args.axi_width}
    )
    accel.to_verilog(str(args.outdir / "nngen_mlp.v"))
    result = {
        "par_ich": args.par_ich,
        "par_och": args.par_och,
        "axi_width": args.axi_width,
        "act_bits": ACT.width,
        "weight_bits": WEIGHT.width,
        "fixed_accuracy": accuracy,
        "eval_s": eval_s,
        "verilog": str(args.outdir / "nngen_mlp.v"),
        "cycles_per_inference": None,
    }
    if not args.no_sim:
        start = time.perf_counter()
        result["cycles_per_inference"] = simulate(
            accel, x, out, x_test[:1], outputs[:1], args.outdir, args.axi_width
        )
        result["sim_s"] = time.perf_counter() - start
    (args.outdir / "nngen.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
