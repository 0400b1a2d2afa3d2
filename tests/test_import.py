"""Importing the library must not import TensorFlow or torch (TF's GPU settings come first), and the library
never depends on its orchestration: no module of ``pipeline`` imports ``flows`` or ``prefect``, at import time
or inside a function, and ``pipeline`` has no import cycles."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PIPELINE = Path(__file__).resolve().parent.parent / "pipeline"
MODULES = sorted(
    ".".join(path.relative_to(PIPELINE.parent).with_suffix("").parts).removesuffix(".__init__")
    for path in PIPELINE.rglob("*.py")
)


def imports_of(module: str) -> set[str]:
    """Every module named by an import statement anywhere in ``module`` (function bodies included)."""
    path = PIPELINE.parent / (module.replace(".", "/") + ".py")
    if not path.is_file():
        path = PIPELINE.parent / module.replace(".", "/") / "__init__.py"
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # ``from pipeline import x``
    return found


def test_every_pipeline_module_is_listed():
    assert "pipeline.runs" in MODULES and "pipeline.stages.base" in MODULES and len(MODULES) > 30


@pytest.mark.parametrize("module", MODULES)
def test_import_loads_no_deep_learning_framework(module):
    code = (
        f"import sys, {module}; "
        "bad = [m for m in ('tensorflow', 'torch', 'spacy', 'prefect', 'flows') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("module", MODULES)
def test_no_pipeline_module_imports_the_orchestration(module):
    bad = {name for name in imports_of(module) if name.split(".")[0] in ("flows", "prefect", "prefect_ray")}
    assert not bad, f"{module} imports {sorted(bad)}"


def test_the_cli_and_flows_import_no_framework_either():
    code = ("import sys, flows.cli, flows.analyze; "
            "print(','.join(m for m in ('tensorflow', 'torch', 'spacy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_no_import_cycles_inside_pipeline():
    """Static graph over every import statement (function-level ones too: a lazy import that closes a cycle
    is still a cycle in the design)."""
    graph = {m: {n for n in imports_of(m) if n in MODULES and n != m} for m in MODULES}
    for module in MODULES:  # a package's import reaches its __init__ only
        graph[module] = {n for n in graph[module] if not module.startswith(n + ".")}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in MODULES:
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_declaring_stages_loads_no_framework():
    """The planner reads declarations before anything initialises a framework."""
    code = (
        "import sys\n"
        "from pipeline.analysis import Analyzer\n"
        "from pipeline.settings import Settings\n"
        "specs = [s.spec() for s in Analyzer(Settings()).stages()]\n"
        "assert [s.framework for s in specs] == ['python', 'spacy', 'torch', 'torch'], specs\n"
        "print(','.join(m for m in ('tensorflow', 'torch', 'spacy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
