"""The layers and their allowed imports (docs/architecture.md), held against the code: the
torch-free parts load no torch, the accelerator's components load no board or simulation code,
each package imports only the layers below it, and no module imports itself through others."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("debut", "hw", "sim", "boards", "compiler")

# what each layer may import of the project (besides itself)
ALLOWED = {
    "debut": set(),
    "hw": {"debut"},
    "sim": {"debut"},
    "boards": {"debut", "hw"},
    "compiler.nn": {"debut"},
    "compiler": {"debut", "hw", "sim", "boards", "compiler.nn"},
}
TORCH_FREE = [
    "debut.chain",
    "debut.errors",
    "debut.fixed",
    "debut.interface",
    "compiler.ir",
    "compiler.golden",
    "compiler.passes",
    "compiler.verify",
    "compiler.quantization",
    "compiler.artifacts",
    "compiler.lower",
    "compiler.fit",
]


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path) -> set[str]:
    """The project modules ``path`` imports, at any depth except under ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text())
    skip = {
        id(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for node in ast.walk(node)
    }
    names = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in PACKAGES}


def layer(module: str) -> str:
    return "compiler.nn" if module.startswith("compiler.nn") else module.split(".")[0]


def test_each_layer_imports_only_the_layers_below_it():
    known = modules()
    wrong = []
    for name, path in known.items():
        for target in imports(path):
            if target not in known:
                continue  # a name imported from a module, counted through the module
            if layer(target) != layer(name) and layer(target) not in ALLOWED[layer(name)]:
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_no_import_cycles():
    known = modules()
    graph = {
        name: {t for t in imports(path) if t in known and t != name} for name, path in known.items()
    }
    # a package's __init__ importing its own modules is how packages work, not a cycle
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def loaded_after_import(names: list[str]) -> set[str]:
    script = (
        "import importlib, json, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout))


def test_the_ir_passes_golden_model_and_lowering_load_no_torch():
    assert "torch" not in loaded_after_import(TORCH_FREE)


def test_the_accelerator_components_load_only_amaranth_numpy_and_the_core():
    hw = sorted(name for name in modules() if layer(name) == "hw")
    loaded = loaded_after_import(hw)
    assert not loaded & {"torch", "boards", "sim", "compiler", "cocotb"}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_names_its_exports(package):
    """Each product module declares what it exports (``__all__``), so the layers' interfaces are
    written down."""
    missing = [
        name
        for name, path in modules().items()
        if name.split(".")[0] == package
        and path.name != "__init__.py"
        and path.read_text().strip()
        and "__all__" not in path.read_text()
        and not name.endswith("__main__")
    ]
    assert missing == []
