"""Package layering, read from the source (every import counts: lazy and TYPE_CHECKING ones too).

- lattice/ and formats/ do not import outputs/ (atomic writing lives in rescorer/atomic.py);
- outputs/ does not import rescoring/ or cli/ (rescoring/ may use outputs/' writers; rendering
  a RescoreReport for the terminal is cli/tables.py);
- the orchestration modules of rescoring/ and cli/ have no import cycle (issue 7 found
  pipeline <-> parallel <-> utterance);
- nothing imports k2.
"""
import ast
from pathlib import Path
from typing import Dict, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rescorer"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> Set[str]:
    """Every module ``path`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


GRAPH: Dict[str, Set[str]] = {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}
MODULES = set(GRAPH)


def package_imports(package: str) -> Set[str]:
    return {imported for module, imported_set in GRAPH.items()
            if module == package or module.startswith(package + ".") for imported in imported_set}


@pytest.mark.parametrize("package, forbidden", [
    ("rescorer.lattice", "rescorer.outputs"), ("rescorer.formats", "rescorer.outputs"),
    ("rescorer.outputs", "rescorer.rescoring"), ("rescorer.outputs", "rescorer.cli"),
    ("rescorer.lattice", "rescorer.rescoring"), ("rescorer.rescoring", "rescorer.cli"),
])
def test_package_does_not_import(package, forbidden):
    offending = sorted(name for name in package_imports(package)
                       if name == forbidden or name.startswith(forbidden + "."))
    assert offending == []


def test_no_module_imports_k2():
    assert sorted(module for module, names in GRAPH.items()
                  if any(name == "k2" or name.startswith("k2.") for name in names)) == []


def test_orchestration_has_no_import_cycle():
    scope = [m for m in MODULES if m.startswith(("rescorer.rescoring", "rescorer.cli", "rescorer.outputs"))]
    edges = {m: {n for n in GRAPH[m] if n in MODULES and n != m and n.startswith(
        ("rescorer.rescoring", "rescorer.cli", "rescorer.outputs"))} for m in scope}
    state: Dict[str, int] = {}  # 1 visiting, 2 done

    def visit(module, trail):
        state[module] = 1
        for target in sorted(edges[module]):
            assert state.get(target) != 1, " -> ".join(trail + [module, target])
            if target not in state:
                visit(target, trail + [module])
        state[module] = 2

    for module in sorted(scope):
        if module not in state:
            visit(module, [])


def test_resolve_device_has_one_home_in_rescoring():
    sources = {module_name(path): path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py")}
    assert "def resolve_device" in sources["rescorer.devices"]
    assert [m for m in sources if m.startswith("rescorer.rescoring") and "def resolve_device" in sources[m]] == []
    assert "rescorer.devices.resolve_device" in GRAPH["rescorer.rescoring.session"]
