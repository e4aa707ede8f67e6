"""Bad input of every kind gets one ``error:`` line and exit status 2, and the output folder is
left as it was: damaged and hostile model files, bad data files and options, output folders that
cannot be written, a second build into a busy folder, a build that fails after writing, and bad
inputs to ``run``."""

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from compiler.cli import main
from compiler.frontend import save_model
from tests.test_cli import tiny_model  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits_debut.pt"


def fails_cleanly(capsys, args, message, folder=None):
    """``main(args)`` exits with 2 and one ``error:`` line holding ``message``; ``folder`` (when
    given) holds exactly what it held before."""
    before = snapshot(folder)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert snapshot(folder) == before
    return err


def snapshot(folder):
    if folder is None or not Path(folder).exists():
        return None
    return {
        p.relative_to(folder): p.read_bytes()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def checkpoint():
    return torch.load(DIGITS, weights_only=True)


def save(tmp_path, name, checkpoint):
    path = tmp_path / name
    torch.save(checkpoint, path)
    return path


# ---- damaged and hostile model files -------------------------------------------------------------


@pytest.mark.parametrize("content", [os.urandom(3000), DIGITS.read_bytes()[:1], b""])
def test_a_damaged_file_is_not_told_to_trust_pickles(tmp_path, capsys, content):
    path = tmp_path / "damaged.pt"
    path.write_bytes(content)
    err = fails_cleanly(capsys, ["inspect", str(path), "--out", str(tmp_path / "o")], "corrupt")
    assert "--trust-pickle" not in err
    assert not (tmp_path / "o").exists()


def test_a_pickled_module_is_told_to_trust_pickles_only_if_trusted(tmp_path, capsys):
    path = tmp_path / "pickled.pt"
    torch.save(nn.Sequential(nn.Linear(4, 2)), path)
    fails_cleanly(
        capsys, ["inspect", str(path)], "pass --trust-pickle only if you trust its source"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(state_dict=[1, 2]), "'state_dict' must map names to tensors"),
        (lambda c: c.update(metadata=[1]), "'metadata' must be a dict, not a list"),
        (lambda c: c.update(preprocessing="x"), "'preprocessing' must be a dict, not a str"),
        (lambda c: c.update(dataset={"name": 3}), "dataset reference must be a dict"),
        (lambda c: c.update(dataset={"name": "mnist"}), "dataset must be one of"),
        (
            lambda c: c["dataset"].update(test_size="x"),
            "dataset reference must give test_size as a number",
        ),
        (
            lambda c: c["architecture"]["layers"][0].update(name="fc.1"),
            "layer 0's name must be letters, digits and '_', not 'fc.1'",
        ),
        (
            lambda c: c["architecture"]["layers"][0].update(name=""),
            "layer 0's name must be letters, digits and '_', not ''",
        ),
        (
            lambda c: c["architecture"]["layers"][2].update(name="fc1"),
            "two layers are named 'fc1'; names must be unique",
        ),
        (
            lambda c: c["architecture"].update(input_shape=[10**9]),
            "input shape (1000000000,) has 1,000,000,000 values per sample",
        ),
        (
            lambda c: c["architecture"]["layers"][0].update(chain=[[64, 64, 3, 8, 1]]),
            "layer 'fc1': factor 0",
        ),
        (
            lambda c: c["state_dict"].update({"fc1.twiddle": torch.zeros(3)}),
            "fc1.twiddle has shape (3,), the architecture needs",
        ),
        (
            lambda c: c["state_dict"].update({"fc1.bias": torch.full((128,), float("nan"))}),
            "tensor 'fc1.bias' has 128 NaN/Inf value(s)",
        ),
        (
            lambda c: c["state_dict"].update({"fc1.bias": torch.zeros(1).expand(128)}),
            "is a view of a smaller storage",
        ),
    ],
)
def test_damaged_checkpoints(tmp_path, capsys, checkpoint, change, message):
    change(checkpoint)
    path = save(tmp_path, "bad.pt", checkpoint)
    fails_cleanly(capsys, ["inspect", str(path), "--out", str(tmp_path / "o")], message)
    assert not (tmp_path / "o").exists()


def huge_checkpoints(tmp_path) -> list[Path]:
    """Small files whose architecture asks for terabytes."""
    base = torch.load(DIGITS, weights_only=True)
    linear = copy.deepcopy(base)
    linear["architecture"] = {
        "input_shape": [4],
        "layers": [{"name": "fc", "type": "Linear", "in_features": 10**6, "out_features": 10**6}],
    }
    linear["state_dict"] = {"fc.weight": torch.zeros(2, 2), "fc.bias": torch.zeros(2)}
    chain = copy.deepcopy(base)
    width = 2**30
    chain["architecture"] = {
        "input_shape": [64],
        "layers": [
            {
                "name": "fc",
                "type": "DeButLinear",
                "in_features": 64,
                "out_features": width,
                "chain": [[width, 64, width // 64, 1, 64]],
                "bias": False,
            }
        ],
    }
    chain["state_dict"] = {"fc.twiddle": torch.zeros(4)}
    wide = copy.deepcopy(base)
    wide["architecture"]["layers"] = [
        {"name": "conv", "type": "Conv2d", "in_channels": 1, "out_channels": 64,
         "kernel_size": [1, 1], "stride": [1, 1], "padding": [0, 0], "dilation": [1, 1],
         "groups": 1, "bias": False},
    ]  # fmt: skip
    wide["architecture"]["input_shape"] = [1, 2048, 2048]
    wide["state_dict"] = {"conv.weight": torch.zeros(64, 1, 1, 1)}
    return [
        save(tmp_path, f"{n}.pt", c)
        for n, c in [("linear", linear), ("chain", chain), ("wide", wide)]
    ]


def test_small_files_cannot_ask_for_large_allocations(tmp_path):
    """Each file is under 1 MB and asks for terabytes (a 10^6 x 10^6 Linear, a 2^30-wide chain)
    or a 268-million-value activation: the compiler refuses it in its own process without its
    peak RSS passing 1 GB."""
    for path in huge_checkpoints(tmp_path):
        assert path.stat().st_size < 1_000_000
        script = (
            "import resource, sys\n"
            "from compiler.cli import main\n"
            f"code = main(['inspect', {str(path)!r}, '--out', {str(tmp_path / 'o')!r}])\n"
            "peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "print(code, peak_kb)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        code, peak_kb = map(int, result.stdout.splitlines()[-1].split())
        assert code == 2, result.stderr
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert peak_kb < 1_000_000, f"{path.name}: peak RSS {peak_kb} KB"


def test_extreme_weights_are_named(tmp_path, capsys):
    model = nn.Sequential(OrderedDict(fc=nn.Linear(4, 4), relu=nn.ReLU(), out=nn.Linear(4, 2)))
    with torch.no_grad():
        model.fc.weight.fill_(1e-38)
    path = save_model(tmp_path / "tiny_weights.pt", model, input_shape=(4,))
    np.savez(tmp_path / "cal.npz", X=np.random.default_rng(0).standard_normal((20, 4)))
    args = [
        "quantize",
        str(path),
        "--calib",
        str(tmp_path / "cal.npz"),
        "--out",
        str(tmp_path / "o"),
    ]
    fails_cleanly(capsys, args, "tensor fc.w0 needs the format s8.133")
    assert not (tmp_path / "o").exists()


def test_a_model_of_only_a_relu_and_a_negative_variance(tmp_path, capsys):
    relu = save_model(
        tmp_path / "relu.pt", nn.Sequential(OrderedDict(r=nn.ReLU())), input_shape=(4,)
    )
    np.savez(tmp_path / "cal.npz", X=np.random.default_rng(0).standard_normal((20, 4)))
    cal = ["--calib", str(tmp_path / "cal.npz")]
    fails_cleanly(capsys, ["quantize", str(relu), *cal], "the model has no linear layer")
    model = nn.Sequential(
        OrderedDict(fc=nn.Linear(4, 4), bn=nn.BatchNorm1d(4), out=nn.Linear(4, 2))
    )
    model.bn.running_var.fill_(-1.0)
    negative = save_model(tmp_path / "negative.pt", model.eval(), input_shape=(4,))
    fails_cleanly(
        capsys,
        ["quantize", str(negative), *cal],
        "bn (BatchNorm1d) has a negative running variance",
    )


# ---- data files and options ----------------------------------------------------------------------


def test_bad_data_files(tmp_path, capsys, tiny_model):  # noqa: F811
    np.save(tmp_path / "x.npy", np.zeros((5, 8)))
    np.savez(tmp_path / "labels.npz", X=np.zeros((20, 8)), y=np.arange(20))
    np.savez(tmp_path / "float_labels.npz", X=np.zeros((20, 8)), y=np.full(20, 0.5))
    np.savez(tmp_path / "nan.npz", X=np.full((5, 8), np.nan))
    np.savez(tmp_path / "shape.npz", X=np.zeros((5, 7)))
    out = ["--out", str(tmp_path / "o")]
    for data, message in [
        ("x.npy", "holds one array (an .npy)"),
        ("labels.npz", "must lie in 0..2 (the model has 3 outputs), not 0..19"),
        ("float_labels.npz", "'y' must hold integer class labels, not float64 values"),
        ("nan.npz", "'X' holds NaN or Inf values"),
        ("shape.npz", "calibration features must have shape (N, 8), not (5, 7)"),
        ("missing.npz", "does not exist"),
    ]:
        args = ["quantize", str(tiny_model), "--calib", str(tmp_path / data), *out]
        fails_cleanly(capsys, args, message)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--clock-mhz", "500"], "--clock-mhz must be in 10..400 MHz, not 500.0"),
        (["--clock-mhz", "390"], "the ECP5 PLL's nearest is 387.5 MHz"),
        (["--clock-mhz", "nan"], "--clock-mhz must be positive, not nan"),
        (["--dsp-budget", "abc"], "argument --dsp-budget: invalid int value: 'abc'"),
        (["--dsp-budget", "0"], "--dsp-budget must be a positive integer, not 0"),
        (["--act-bits", "40"], "--act-bits must be an integer in 2..16, not 40"),
        (["--seed", "-1"], "--seed must be an integer in 0..2147483647, not -1"),
        (["--board", "icebreaker"], "the design does not fit icebreaker"),
        (["--stop-after", "pnr", "--no-synth"], "--no-synth is --stop-after check"),
    ],
)
def test_bad_options_write_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "b"
    fails_cleanly(capsys, ["build", str(DIGITS), "--out", str(out), *extra], message)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_sim_options_are_checked_first(tmp_path, capsys):
    out = tmp_path / "s"
    for extra, message in [
        (["--seed", "-1"], "--seed must be an integer in 0..2147483647, not -1"),
        (["--vectors", "0"], "--vectors must be a positive integer, not 0"),
    ]:
        fails_cleanly(capsys, ["sim", str(DIGITS), "--out", str(out), *extra], message)
    assert not out.exists()


# ---- output folders -----------------------------------------------------------------------------


def test_output_folders_that_cannot_be_used(tmp_path, capsys, tiny_model):  # noqa: F811
    np.savez(tmp_path / "cal.npz", X=np.random.default_rng(0).standard_normal((20, 8)))
    args = ["quantize", str(tiny_model), "--calib", str(tmp_path / "cal.npz")]
    for folder in ("", ".", ".."):
        fails_cleanly(
            capsys, [*args, "--out", folder], "the output folder must be a folder of its own"
        )
    (tmp_path / "file").write_text("a file")
    fails_cleanly(
        capsys, [*args, "--out", str(tmp_path / "file")], "is a file; choose another --out"
    )
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        fails_cleanly(capsys, [*args, "--out", str(locked / "o")], "Permission denied")


def test_a_busy_folder_is_refused_and_a_stale_lock_taken_over(tmp_path, capsys, tiny_model):  # noqa: F811
    np.savez(tmp_path / "cal.npz", X=np.random.default_rng(0).standard_normal((20, 8)))
    out = tmp_path / "q"
    args = ["inspect", str(tiny_model), "--calib", str(tmp_path / "cal.npz"), "--out", str(out)]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "q.lock").write_text(f"{sleeper.pid}\n")
        fails_cleanly(capsys, args, f"another build (process {sleeper.pid}) is writing {out}")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert main(args) == 0  # its process is gone: the lock is stale
    assert not (tmp_path / "q.lock").exists() and (out / "report.json").is_file()


def test_a_build_replaces_the_folder_whole_with_readable_files(tmp_path, tiny_model):  # noqa: F811
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cal.npz", X=rng.standard_normal((20, 8)), y=rng.integers(0, 3, 20))
    out = tmp_path / "q"
    out.mkdir()
    (out / "leftover.txt").write_text("from another model")
    args = ["quantize", str(tiny_model), "--calib", str(tmp_path / "cal.npz"), "--out", str(out)]
    umask = os.umask(0o022)
    try:
        assert main(args) == 0
    finally:
        os.umask(umask)
    assert not (out / "leftover.txt").exists()
    for name in ("manifest.json", "report.json", "accuracy_vs_bits.png"):
        assert (out / name).stat().st_mode & 0o777 == 0o644
    assert not (tmp_path / "q.partial").exists() and not (tmp_path / "q.failed").exists()


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
def test_a_failed_build_leaves_the_previous_one_and_keeps_its_own_logs(
    tmp_path,
    capsys,
    monkeypatch,
    tiny_model,  # noqa: F811
):
    """The quick check cannot run (no simulator on PATH): the build fails after writing its
    Verilog. The previous build (with a bitstream) is untouched; the failed one's files are in
    DIR.failed."""
    np.savez(tmp_path / "cal.npz", X=np.random.default_rng(0).standard_normal((20, 8)))
    out = tmp_path / "b"
    args = ["build", str(tiny_model), "--calib", str(tmp_path / "cal.npz"), "--out", str(out)]
    assert main([*args, "--no-synth", "--dsp-budget", "5"]) == 0
    (out / "top.bit").write_bytes(b"an earlier bitstream")
    capsys.readouterr()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    fails_cleanly(capsys, [*args, "--no-synth", "--dsp-budget", "6"], "not installed", out)
    failed = tmp_path / "b.failed"
    assert (failed / "core.v").is_file()
    report = json.loads((failed / "report.json").read_text())
    assert report["artifacts"]["verilog"] == str(failed / "core.v")
    assert report["hardware"]["multipliers"] <= 6
    assert not (tmp_path / "b.partial").exists() and not (tmp_path / "b.lock").exists()


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
def test_an_interrupted_build_leaves_the_folder_as_it_was(tmp_path):
    """Ctrl-C while a second build into the same folder writes its Verilog (the step after it,
    the quick check, can take well under a second with a cached simulator model)."""
    small = ROOT / "examples" / "digits_debut_small.pt"
    out = tmp_path / "b"
    args = ["build", str(small), "--dsp-budget", "8", "--out", str(out)]
    assert main([*args, "--stop-after", "verilog"]) == 0
    before = snapshot(out)
    # unbuffered: a pipe would hold the build's "[check]" line back until it exits
    command = [sys.executable, "-u", "-m", "compiler", *args, "--no-synth"]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    for line in process.stdout:
        if line.startswith("[verilog]"):
            break
    process.send_signal(signal.SIGINT)  # generating the Verilog takes seconds
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err
    assert snapshot(out) == before
    assert not (tmp_path / "b.partial").exists() and not (tmp_path / "b.lock").exists()


# ---- run ----------------------------------------------------------------------------------------


def test_run_checks_its_inputs(tmp_path, capsys, tiny_model):  # noqa: F811
    x = np.random.default_rng(5).standard_normal((30, 8))
    np.savez(tmp_path / "cal.npz", X=x)
    out = tmp_path / "b"
    build = ["build", str(tiny_model), "--calib", str(tmp_path / "cal.npz"), "--out", str(out)]
    assert main([*build, "--stop-after", "verilog", "--dsp-budget", "5"]) == 0
    capsys.readouterr()
    cases = [
        (np.zeros((2, 5)), "--input must have one or more rows of 8 features, not shape (2, 5)"),
        (np.zeros((0, 8)), "--input must have one or more rows of 8 features, not shape (0, 8)"),
        (np.full((2, 8), np.inf), "--input holds 16 NaN or Inf value(s)"),
        (np.array([["a"] * 8]), "--input must hold numbers, not <U1"),
    ]
    for k, (data, message) in enumerate(cases):
        np.save(tmp_path / f"x{k}.npy", data)
        run = ["run", str(out), "--port", "sim", "--input", str(tmp_path / f"x{k}.npy")]
        fails_cleanly(capsys, run, message)
    fails_cleanly(capsys, [*run, "--baud", "0"], "--baud must be a positive integer, not 0")
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["input"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    fails_cleanly(capsys, run, "manifest.json is damaged")
    manifest["version"] = 1
    (out / "manifest.json").write_text(json.dumps(manifest))
    fails_cleanly(capsys, run, "rebuild it")


def test_run_saturates_inputs_outside_the_format_with_a_warning(tmp_path, capsys, tiny_model):  # noqa: F811
    x = np.random.default_rng(5).standard_normal((30, 8))
    np.savez(tmp_path / "cal.npz", X=x)
    out = tmp_path / "b"
    build = ["build", str(tiny_model), "--calib", str(tmp_path / "cal.npz"), "--out", str(out)]
    assert main([*build, "--stop-after", "verilog", "--dsp-budget", "5"]) == 0
    big = x[:2].copy()
    big[0, :3] = 1e6
    np.save(tmp_path / "big.npy", big)
    capsys.readouterr()
    assert main(["run", str(out), "--port", "sim", "--input", str(tmp_path / "big.npy")]) == 0
    assert "warning: 3 input value(s) lie outside the input format" in capsys.readouterr().out


@pytest.fixture
def full_disk(tmp_path):
    """A 200 KB file system (tmpfs), where the core's Verilog does not fit; skipped where this
    user cannot mount one."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_fails_cleanly(full_disk, capsys):
    out = full_disk / "b"
    small = ROOT / "examples" / "digits_debut_small.pt"
    args = ["build", str(small), "--dsp-budget", "8", "--stop-after", "verilog", "--out", str(out)]
    fails_cleanly(capsys, args, "No space left on device; free space or choose another --out")
    assert list(full_disk.iterdir()) == []
