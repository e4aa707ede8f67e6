"""Real board builds (synth tier): Yosys, nextpnr and the packer through `build`, the estimate held
against what the tools used, the netlist the bitstream is made from simulated at the top's pins
against the golden model (and a differing one leaving no bitstream), and a missed clock leaving
no bitstream. A small model keeps the tier to about a minute; the digits
model's ULX3S build is the README's main job (many minutes of place and route)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from boards.pll import ecp5_pll_frequencies
from compiler.cli import main
from compiler.options import AUTO_FIRST_MHZ
from tests.test_cli import tiny_model  # noqa: F401  (fixture)

pytestmark = pytest.mark.synth

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def calib(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "cal.npz"
    np.savez(path, X=rng.standard_normal((40, 8)), y=rng.integers(0, 3, 40))
    return path


def _build(model, calib, out, *extra):
    return main(["build", str(model), "--calib", str(calib), "--out", str(out), *extra])


def test_ulx3s_12f_build_matches_estimate_and_netlist(tiny_model, calib, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "b12"
    assert (
        _build(
            tiny_model,
            calib,
            out,
            "--board",
            "ulx3s-12f",
            "--dsp-budget",
            "8",
            "--netlist-sim",
            "4",
        )
        == 0
    )
    bitstream = out / "top.bit"
    assert bitstream.stat().st_size > 100_000
    report = json.loads((out / "report.json").read_text())
    synth, estimate = report["synth"], report["synth"]["estimate"]
    used = {cell: v["used"] for cell, v in synth["utilization"].items()}
    # the automatic clock: one place and route at the first target, then the fastest PLL
    # clock below the Fmax reached there, less the margin; a bitstream always meets its clock
    clock, passes = synth["clock_mhz"], synth["clock_passes"]
    assert synth["clock_mode"] == "auto" and synth["timing_met"]
    assert [p["target_mhz"] for p in passes] == [AUTO_FIRST_MHZ]
    assert synth["fmax_mhz"] == passes[0]["fmax_mhz"] >= clock
    below = [f for f in ecp5_pll_frequencies(25.0) if f <= passes[0]["fmax_mhz"] * 0.98]
    assert clock == below[-1]
    path = synth["critical_path"]
    assert path["delay_ns"] == pytest.approx(path["logic_ns"] + path["routing_ns"])
    assert 1000 / path["delay_ns"] == pytest.approx(synth["fmax_mhz"], rel=0.05)
    assert used["MULT18X18D"] == estimate["dsp"] == report["hardware"]["multipliers"] == 8
    assert abs(used.get("DP16KD", 0) - estimate["ebr"]) <= 1
    assert used["TRELLIS_COMB"] == pytest.approx(estimate["lut"], rel=0.25)
    assert used["TRELLIS_FF"] == pytest.approx(estimate["ff"], rel=0.25)
    assert used["TRELLIS_COMB"] <= 12_000  # the 12F's own budget, not the 25F die it shares
    # the packed netlist at its pins: PING, the 32 self-test vectors, 4 INFER frames
    check = synth["netlist_check"]
    assert (check["vectors"], check["mismatches"], check["framing_errors"]) == (36, 0, 0)
    assert not check["timed_out"] and check["cycles_per_vector"] >= report["hardware"]["ii_cycles"]
    assert report["artifacts"]["bitstream"] == str(bitstream)
    assert report["throughput"]["inferences_per_s"] == pytest.approx(
        clock * 1e6 / report["hardware"]["ii_cycles"]
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["board"]["board"] == "ulx3s-12f"
    assert manifest["board"]["selftest"]["vectors"] == 32
    # the same top (self-test ROM included) in the simulator reproduces the build's checksum
    np.save(tmp_path / "x.npy", np.random.default_rng(3).standard_normal((2, 8)))
    capsys.readouterr()
    assert main(["run", str(out), "--port", "sim", "--input", str(tmp_path / "x.npy")]) == 0
    assert "matches the golden model's checksum recorded at build time" in capsys.readouterr().out


def test_a_netlist_that_differs_from_the_golden_model_leaves_no_bitstream(
    tiny_model,  # noqa: F811
    calib,
    tmp_path,
    monkeypatch,
    capsys,
):
    """A simulation netlist whose DSPs lost their output register (one Yosys command more in the
    synth step's run, as a synthesis bug would): the netlist check finds the differences over
    the UART, the build exits with an error and writes no bitstream."""
    from compiler.steps import board

    write = "write_verilog -noattr top_netlist_sim.v\n"
    broken = 'setparam -set REG_OUTPUT_CLK "NONE" t:MULT18X18D\n' + write
    monkeypatch.setattr(board, "NETLIST_SCRIPT", board.NETLIST_SCRIPT.replace(write, broken))
    out = tmp_path / "broken"
    args = ("--board", "ulx3s-12f", "--dsp-budget", "8", "--netlist-sim", "2")
    args += ("--clock-mhz", "50")  # an easy target, quick to route: the automatic clock is above
    assert _build(tiny_model, calib, out, *args) == 2
    err = capsys.readouterr().err
    assert "the synthesised netlist differs from the golden model" in err
    assert "SELFTEST: checksum" in err
    assert not out.exists()  # the failed build is in DIR.failed
    failed = tmp_path / "broken.failed"
    assert 'REG_OUTPUT_CLK("NONE")' in (failed / "bitstream" / "top_netlist_sim.v").read_text()
    assert 'REG_OUTPUT_CLK("NONE")' not in (failed / "bitstream" / "top_netlist.v").read_text()
    results = json.loads((failed / "sim_netlist" / "results.json").read_text())
    assert len(results["exchanges"]) == 2 + 2  # PING, SELFTEST, 2 INFER
    assert not (failed / "top.bit").exists() and (failed / "bitstream" / "top.config").exists()


def test_a_netlist_that_lost_its_multipliers_is_refused(
    tiny_model,  # noqa: F811
    calib,
    tmp_path,
    monkeypatch,
    capsys,
):
    """A synthesis that loses the core's DSPs (one Yosys command more in the synth step's run,
    as a synthesis bug would) stops the build before place and route, with no bitstream."""
    from compiler.steps import board

    monkeypatch.setattr(board, "NETLIST_SCRIPT", board.NETLIST_SCRIPT + "delete t:MULT18X18D\n")
    out = tmp_path / "lost"
    args = ("--board", "ulx3s-12f", "--dsp-budget", "8", "--netlist-sim", "1")
    assert _build(tiny_model, calib, out, *args) == 2
    err = capsys.readouterr().err
    assert "synthesis kept 0 MULT18X18D of the core's 8 multipliers" in err
    assert not out.exists()
    failed = tmp_path / "lost.failed"
    assert not (failed / "bitstream" / "nextpnr.log").exists()  # stopped before nextpnr
    assert not (failed / "top.bit").exists()


def test_icebreaker_build_with_a_shared_stage(tiny_model, calib, tmp_path):  # noqa: F811
    """Two multipliers for the tiny model's three factors: fc1's two factors share one (a shared
    stage, its memories in the iCE40's block RAM), fc2 has the other."""
    out = tmp_path / "ice"
    assert _build(tiny_model, calib, out, "--board", "icebreaker", "--dsp-budget", "2") == 0
    assert (out / "top.bin").stat().st_size > 50_000
    report = json.loads((out / "report.json").read_text())
    synth, estimate = report["synth"], report["synth"]["estimate"]
    assert [st["name"] for st in report["hardware"]["stages"]] == ["fc1.f0..fc1.f1", "fc2.f0"]
    assert synth["timing_met"] and synth["clock_mhz"] == 12.0
    used = {cell: v["used"] for cell, v in synth["utilization"].items()}
    assert used["ICESTORM_DSP"] == estimate["dsp"] == 2
    assert abs(used.get("ICESTORM_RAM", 0) - estimate["ebr"]) <= 1
    assert synth["rtl_check"]["mismatches"] == 0


def test_missed_clock_is_an_error_and_leaves_no_bitstream(tiny_model, calib, tmp_path, capsys):  # noqa: F811
    """On the ULX3S-85F: the tier's one build for the largest device."""
    out = tmp_path / "fast"
    code = _build(
        tiny_model, calib, out, "--board", "ulx3s-85f", "--dsp-budget", "8", "--clock-mhz", "250"
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "timing not met" in err and "of the 250 MHz asked" in err and "--clock-mhz" in err
    assert not out.exists()  # nothing of a failed build lands in DIR
    failed = tmp_path / "fast.failed"
    assert str(failed / "bitstream" / "nextpnr.log") in err
    synth = json.loads((failed / "report.json").read_text())["synth"]
    assert synth["timing_met"] is False and 0 < synth["fmax_mhz"] < 250
    assert not (failed / "top.bit").exists()


def test_digits_debut_build_fills_the_ulx3s_12f(tmp_path):
    """The shipped digits DeBut model through the whole flow, on the smallest ULX3S at its
    default, full budget: all 28 DSPs, no room for registers between stages, and the core of the
    README's main job (the 85F at 28 DSPs builds the same core with those registers; the
    benchmark sweep builds it). II 236: its stages' one-slot queues add 8 cycles to 228. No
    netlist check: Verilator's model of a top this size takes far longer to build than the tier
    allows (docs/cli.md); the small core's build above checks its top's netlist."""
    out = tmp_path / "digits"
    model = ROOT / "examples" / "digits_debut.pt"
    args = ["build", str(model), "--board", "ulx3s-12f", "--out", str(out)]
    args += ["--clock-mhz", "37.5"]  # an easy target, quick to route: the automatic clock is above
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    synth, estimate = report["synth"], report["synth"]["estimate"]
    used = {cell: v["used"] for cell, v in synth["utilization"].items()}
    assert report["hardware"]["dsp_primitive"] == "MULT18X18D"
    assert report["hardware"]["ii_cycles"] == 236
    assert report["hardware"]["stage_registers"] is False
    assert used["MULT18X18D"] == estimate["dsp"] == report["hardware"]["multipliers"] == 28
    assert abs(used.get("DP16KD", 0) - estimate["ebr"]) <= 1
    assert used["TRELLIS_COMB"] == pytest.approx(estimate["lut"], rel=0.25)
    assert used["TRELLIS_FF"] == pytest.approx(estimate["ff"], rel=0.25)
    assert synth["timing_met"] and synth["fmax_mhz"] >= synth["clock_mhz"] == 37.5
    assert synth["rtl_check"]["mismatches"] == 0 and synth["rtl_check"]["vectors"] == 16
    assert synth["netlist_check"] is None
    assert (out / "top.bit").stat().st_size > 100_000
    assert report["quant"]["fixed_accuracy"] > 0.95
    assert report["throughput"]["inferences_per_s"] == pytest.approx(37.5e6 / 236)


def test_terminated_build_stops_its_tools_and_leaves_no_bitstream(tiny_model, calib, tmp_path):  # noqa: F811
    """SIGTERM in the middle of place and route: exit status 130, nextpnr stopped with it, no
    bitstream."""
    out = tmp_path / "term"
    command = [sys.executable, "-m", "compiler", "build", str(tiny_model), "--calib", str(calib)]
    command += ["--board", "ulx3s-12f", "--dsp-budget", "8", "--out", str(out)]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    for line in process.stdout:
        if line.strip().startswith("[pnr] nextpnr"):
            break
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err
    assert not (out / "top.bit").exists()
    workdir = str((tmp_path / "term.partial" / "bitstream").resolve())
    alive = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.readlink(proc / "cwd") == workdir:
                alive.append(proc.name)
        except OSError:
            continue
    assert alive == []
