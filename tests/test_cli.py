import dataclasses
import json
import shutil
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from boards.registry import get_board
from compiler.artifacts import read_manifest
from compiler.cli import main
from compiler.fit import check_fit, lower_for_board
from compiler.frontend.modelfile import Preprocessing, save_model
from compiler.nn.linear import DeButLinear
from debut.errors import FitError
from tests.helpers import quantized

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_model(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(
        OrderedDict(
            fc1=DeButLinear(8, 16, [[16, 8, 4, 2, 1], [16, 16, 4, 4, 4]]),
            relu1=nn.ReLU(),
            fc2=nn.Linear(16, 3),
        )
    )
    return save_model(
        tmp_path / "tiny.pt", model, input_shape=(8,), preprocessing=Preprocessing(2.0, 0.0)
    )


def test_help_lists_commands():
    result = subprocess.run(
        [sys.executable, "-m", "compiler", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0
    assert "inspect" in result.stdout


def test_inspect_counts_and_report(tiny_model, tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 8))
    # labels from an independent computation of the same network
    loaded_net = torch.load(tiny_model, weights_only=True)["state_dict"]
    from debut.chain import Chain

    chain = Chain.from_list([[16, 8, 4, 2, 1], [16, 16, 4, 4, 4]])
    w1 = chain.materialize(loaded_net["fc1.twiddle"].double().numpy())
    h = np.maximum((2.0 * x) @ w1.T + loaded_net["fc1.bias"].double().numpy(), 0)
    logits = (
        h @ loaded_net["fc2.weight"].double().numpy().T + loaded_net["fc2.bias"].double().numpy()
    )
    y = logits.argmax(1)
    y[:5] = (y[:5] + 1) % 3  # five wrong labels: accuracy must be exactly 75%
    np.savez(tmp_path / "data.npz", X=x, y=y)

    out = tmp_path / "out"
    assert (
        main(["inspect", str(tiny_model), "--calib", str(tmp_path / "data.npz"), "--out", str(out)])
        == 0
    )
    text = capsys.readouterr().out
    assert "test accuracy (float): 75.00% on" in text
    report = json.loads((out / "report.json").read_text())
    sections = {"model", "quant", "hardware", "sim", "synth", "throughput", "artifacts"}
    assert set(report) == {*sections, "command", "time_per_step_s", "schema"}
    assert report["command"] == "inspect" and set(report["time_per_step_s"]) == {
        "load",
        "summarize",
    }
    assert report["quant"] is None
    layers = report["model"]["layers"]
    assert [layer["name"] for layer in layers] == ["fc1", "fc2"]
    assert layers[0]["params"] == 16 * 2 + 16 * 4 + 16  # factor params p*s, plus bias
    assert layers[0]["macs"] == 16 * 2 + 16 * 4
    assert layers[1]["chain"] == [[3, 16, 3, 16, 1]]
    assert report["model"]["params"] == 16 * 2 + 16 * 4 + 16 + 16 * 3 + 3
    assert report["model"]["float_accuracy"] == 0.75


def test_inspect_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 10)
    assert main(["inspect", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_inspect_shipped_debut_model(tmp_path, capsys):
    assert (
        main(["inspect", str(ROOT / "examples" / "digits_debut.pt"), "--out", str(tmp_path)]) == 0
    )
    text = capsys.readouterr().out
    assert "sklearn-digits test split (450 samples)" in text
    assert "DeButLinear" in text


def test_quantize_writes_manifest_report_and_plot(tiny_model, tmp_path, capsys):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "cal.npz", X=rng.standard_normal((64, 8)), y=rng.integers(0, 3, 64))
    out = tmp_path / "q"
    args = ["quantize", str(tiny_model), "--calib", str(tmp_path / "cal.npz"), "--out", str(out)]
    assert main([*args, "--act-bits", "6", "--weight-bits", "7"]) == 0
    text = capsys.readouterr().out
    assert "fixed-point accuracy" in text and "argmax agreement" in text
    report = json.loads((out / "report.json").read_text())
    quant = report["quant"]
    assert quant["act_bits"] == 6 and quant["weight_bits"] == 7
    assert quant["formats"]["input"][0] == 6 and quant["formats"]["fc1.w0"][0] == 7
    assert set(quant["saturations"]) == {"input", "fc1.f0", "fc1", "fc2"}
    assert [s["bits"] for s in quant["sweep"]] == list(range(4, 13))
    assert report["hardware"] is None and report["model"]["params"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["options"]["act_bits"] == 6
    assert len(manifest["weights_sha256"]) == 64
    assert (out / "accuracy_vs_bits.png").read_bytes()[:4] == b"\x89PNG"


def test_quantize_rejects_bad_bits(tiny_model, tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["quantize", str(tiny_model), "--act-bits", "1", "--out", str(out)]) == 2
    assert capsys.readouterr().err == "error: --act-bits must be an integer in 2..16, not 1\n"
    assert not out.exists()


def test_quantize_needs_data_for_a_model_without_dataset(tiny_model, tmp_path, capsys):
    assert main(["quantize", str(tiny_model), "--out", str(tmp_path / "q")]) == 2
    assert "names no built-in data set; pass --calib F.npz" in capsys.readouterr().err


def test_build_no_synth_writes_core_manifest_and_report(tiny_model, tmp_path, capsys):
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "cal.npz", X=rng.standard_normal((40, 8)), y=rng.integers(0, 3, 40))
    out = tmp_path / "b"
    args = ["build", str(tiny_model), "--calib", str(tmp_path / "cal.npz"), "--out", str(out)]
    assert main([*args, "--no-synth", "--board", "ulx3s-12f", "--dsp-budget", "5"]) == 0
    text = capsys.readouterr().out
    assert "[verilog] done in" in text
    report = json.loads((out / "report.json").read_text())
    hardware = report["hardware"]
    stages = hardware["stages"]
    assert [s["name"] for s in stages] == ["fc1.f0", "fc1.f1", "fc2.f0"]
    assert sum(s["multipliers"] for s in stages) == hardware["multipliers"] <= 5
    macs = [16 * 2, 16 * 4, 3 * 16]  # p*s of each factor
    assert [s["macs"] for s in stages] == macs
    stage_ii = [-(-a // s["multipliers"]) for a, s in zip(macs, stages, strict=True)]
    assert hardware["ii_cycles"] == max(stage_ii)
    assert report["throughput"]["multiplier_efficiency"] == pytest.approx(
        sum(macs) / (hardware["ii_cycles"] * hardware["multipliers"])
    )
    assert report["synth"] is None and report["artifacts"]["bitstream"] is None
    verilog = (out / "core.v").read_text()
    assert "module debut_core" in verilog
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["interface"]["input"]["elements"] == 8
    assert manifest["interface"]["ii_cycles"] == hardware["ii_cycles"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--no-synth", "--clock-mhz", "50"],
            "--clock-mhz and --netlist-sim need synthesis; drop --no-synth",
        ),
        (["--netlist-sim", "-1"], "--netlist-sim must be 0 or more vectors, not -1"),
        (["--no-synth", "--board", "de10"], "--board must be one of ulx3s-12f, ulx3s-25f"),
        (
            ["--no-synth", "--board", "icebreaker", "--dsp-budget", "9"],
            "--dsp-budget 9 exceeds the 8 DSPs of icebreaker",
        ),
        (
            ["--no-synth", "--dsp-budget", "2", "--target-ii", "1"],
            "II 1 needs at least 3 multipliers (one per factor) but the budget is 2",
        ),
    ],
)
def test_build_errors(tiny_model, tmp_path, capsys, extra, message):
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "cal.npz", X=rng.standard_normal((40, 8)))
    out = tmp_path / "b"
    assert (
        main(
            [
                "build",
                str(tiny_model),
                "--calib",
                str(tmp_path / "cal.npz"),
                "--out",
                str(out),
                *extra,
            ]
        )
        == 2
    )
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.sim
def test_sim_command_reports_zero_mismatches(tiny_model, tmp_path, capsys):
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "cal.npz", X=rng.standard_normal((30, 8)), y=rng.integers(0, 3, 30))
    out = tmp_path / "s"
    args = ["sim", str(tiny_model), "--calib", str(tmp_path / "cal.npz"), "--out", str(out)]
    assert main([*args, "--vectors", "50", "--board", "ulx3s-12f", "--dsp-budget", "4"]) == 0
    text = capsys.readouterr().out
    assert "0 mismatches in 150 output elements" in text
    report = json.loads((out / "report.json").read_text())
    assert report["sim"]["vectors"] == 50 and report["sim"]["mismatches"] == 0
    assert report["sim"]["simulator"] == "verilator"
    assert report["hardware"]["ii_cycles"] > 1 and report["quant"] is not None


@pytest.mark.sim
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
def test_sim_command_with_icarus(tiny_model, tmp_path, capsys):
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "cal.npz", X=rng.standard_normal((30, 8)), y=rng.integers(0, 3, 30))
    out = tmp_path / "v"
    args = ["sim", str(tiny_model), "--calib", str(tmp_path / "cal.npz"), "--out", str(out)]
    assert main([*args, "--vectors", "40", "--simulator", "icarus", "--dsp-budget", "6"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["sim"]["simulator"] == "icarus" and report["sim"]["mismatches"] == 0
    assert (out / "sim_icarus" / "results.json").is_file()


def test_boards_lists_every_board_with_budgets(capsys):
    assert main(["boards"]) == 0
    text = capsys.readouterr().out
    for name, dsp in [("ulx3s-12f", "28"), ("ulx3s-85f", "156"), ("icebreaker", "8")]:
        line = next(row for row in text.splitlines() if row.startswith(name))
        assert f" {dsp} " in line
    assert "ulx3s is ulx3s-85f" in text


def test_run_on_the_simulated_board_matches_the_golden_model(tiny_model, tmp_path, capsys):

    from compiler.golden import quantize_input, run_integer

    rng = np.random.default_rng(5)
    x = rng.standard_normal((30, 8))
    np.savez(tmp_path / "cal.npz", X=x)
    np.save(tmp_path / "x.npy", x[:4])
    out = tmp_path / "b"
    build = ["build", str(tiny_model), "--calib", str(tmp_path / "cal.npz"), "--out", str(out)]
    assert main([*build, "--no-synth", "--dsp-budget", "5"]) == 0
    capsys.readouterr()
    assert main(["run", str(out), "--port", "sim", "--input", str(tmp_path / "x.npy")]) == 0
    text = capsys.readouterr().out
    graph = read_manifest(out).graph()
    expected = run_integer(graph, quantize_input(graph, x[:4])).output.argmax(axis=1)
    for k, cls in enumerate(expected):
        assert f"  {k}: class {cls} " in text
    assert "self-test: checksum 0x" in text
    assert main(["run", str(tmp_path), "--port", "sim", "--input", "x.npy"]) == 2
    assert "has no manifest.json; build first" in capsys.readouterr().err


def test_run_checks_the_selftest_against_the_build(tiny_model, tmp_path, capsys):
    """With a build's board entry (self-test ROM inputs, golden checksum, design id), run --port
    sim rebuilds the same top and refuses a device whose checksum or design id differ."""

    from boards.link.protocol import selftest_checksum
    from compiler.golden import quantize_input, run_integer

    rng = np.random.default_rng(6)
    x = rng.standard_normal((30, 8))
    np.savez(tmp_path / "cal.npz", X=x)
    np.save(tmp_path / "x.npy", x[:2])
    out = tmp_path / "b"
    build = ["build", str(tiny_model), "--calib", str(tmp_path / "cal.npz"), "--out", str(out)]
    assert main([*build, "--no-synth", "--dsp-budget", "5"]) == 0
    graph = read_manifest(out).graph()
    inputs = quantize_input(graph, x[10:13])
    golden = selftest_checksum(run_integer(graph, inputs).output, graph.output_format)
    manifest = json.loads((out / "manifest.json").read_text())

    def run_with(board_entry):
        manifest["board"] = board_entry
        (out / "manifest.json").write_text(json.dumps(manifest))
        capsys.readouterr()
        status = main(["run", str(out), "--port", "sim", "--input", str(tmp_path / "x.npy")])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    entry = {
        "board": "ulx3s-85f",
        "clock_mhz": 37.5,
        "baud": 1_000_000,
        "design_id": 0x1234ABCD,
        "selftest": {"vectors": 3, "checksum": golden, "inputs": inputs.tolist()},
    }
    status, text, _ = run_with(entry)
    assert status == 0
    assert "3 self-test vectors, design id 0x1234abcd" in text
    assert f"self-test: checksum 0x{golden:08x}, " in text
    assert "matches the golden model's checksum recorded at build time" in text

    wrong = golden ^ 1
    status, _, err = run_with({**entry, "selftest": {**entry["selftest"], "checksum": wrong}})
    assert status == 2
    assert f"self-test checksum 0x{golden:08x} differs from the golden model's 0x{wrong:08x}" in err


@pytest.mark.parametrize(
    ("board", "message"),
    [("icebreaker", "the design does not fit icebreaker: it needs an estimated ")],
)
def test_digits_debut_does_not_fit_the_small_boards(tmp_path, capsys, board, message):
    """The fit check runs before anything is written and names what would fit; the folder keeps
    what an earlier build left there. (The ULX3S-12F takes it at its full budget: see the synth
    tier.)"""
    out = tmp_path / "b"
    out.mkdir()
    (out / "top.bit").write_text("from an earlier build")
    model = ROOT / "examples" / "digits_debut.pt"
    assert main(["build", str(model), "--board", board, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "no DSP budget fits" in err and "use a larger board" in err
    assert sorted(p.name for p in out.iterdir()) == ["top.bit"]
    assert (out / "top.bit").read_text() == "from an earlier build"


def test_no_budget_fits_names_only_what_does_not_fit():
    """When no DSP budget fits, the hint names the resources of the smallest design (one
    multiplier) that exceed the board, and not those that fit. The digits DeBut core on one
    multiplier is a single shared stage: few LUT4s and flip-flops, but its schedule ROM needs
    more of the iCE40's 4 Kb block RAMs than the iCEBreaker has; with 8,000 LUT4s (as many
    flip-flops) only the block RAMs are too many."""
    icebreaker = get_board("icebreaker")
    graph = quantized(ROOT / "examples" / "digits_debut.pt").quantized.graph
    lowered = lower_for_board(graph, icebreaker, budget=icebreaker.dsp)
    lowered.discard()  # only estimated
    board = dataclasses.replace(icebreaker, lut=8_000)
    with pytest.raises(FitError, match="no DSP budget fits") as error:
        check_fit(graph, lowered, board)
    hint = str(error.value).split("no DSP budget fits", 1)[1]
    assert "on a single multiplier" in hint and "EBRs of 30" in hint
    assert "LUT4s" not in hint and "flip-flops" not in hint and "DSPs" not in hint


def test_flash_needs_a_bitstream_build(tiny_model, tmp_path, capsys):
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "cal.npz", X=rng.standard_normal((40, 8)))
    out = tmp_path / "b"
    args = ["build", str(tiny_model), "--calib", str(tmp_path / "cal.npz"), "--out", str(out)]
    assert main([*args, "--no-synth"]) == 0
    assert main(["flash", str(out)]) == 2
    assert "holds no bitstream build" in capsys.readouterr().err
    assert main(["flash", str(tmp_path / "nowhere")]) == 2
    assert "has no manifest.json" in capsys.readouterr().err
