"""Solvers are pure functions over cells: they never import the model package (issue 7, layering)."""
import ast
from pathlib import Path

SOLVERS = Path(__file__).resolve().parents[2] / "rescorer" / "solvers"


def imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_solvers_do_not_import_the_model():
    files = sorted(SOLVERS.glob("*.py"))
    assert len(files) >= 3
    offending = [(path.name, module) for path in files for module in imported_modules(path)
                 if module.startswith("rescorer.") and not module.startswith("rescorer.solvers")]
    assert offending == []
