"""The package's layers (zcbench/__init__.py): each subpackage imports only the layers its
docstring allows, at the top of a module or inside a function alike."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "zcbench"
ALLOWED = {
    "core": {"core"},
    "devtools": {"core", "devtools"},
    "host": {"core", "devtools", "host"},
    "measure": {"core", "devtools", "host", "measure"},
    "analyze": {"core", "analyze"},
    "present": {"core", "analyze", "present"},
}


def zcbench_imports(path: Path) -> set[str]:
    """The zcbench subpackages a module imports (zcbench.X... -> X)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "zcbench" and len(parts) > 1 and parts[1] in ALLOWED:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_what_it_may(layer):
    modules = sorted((PACKAGE / layer).rglob("*.py"))
    assert modules
    for module in modules:
        wrong = zcbench_imports(module) - ALLOWED[layer]
        assert not wrong, f"{module.relative_to(PACKAGE)} imports {sorted(wrong)}"


def test_each_layer_says_what_it_owns_and_may_import():
    for layer in ALLOWED:
        doc = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text()))
        assert doc and doc.startswith(f"{layer}:") and "import" in doc.lower()
