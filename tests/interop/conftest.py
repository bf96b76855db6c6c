"""Real-k2 interop tests: run in the pinned env built by bin/setup-k2-env.

    .venv-k2/bin/python -m pytest -m k2 tests/interop

Every test here is marked ``k2`` and skips cleanly where k2 cannot be imported.
"""
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def pytest_collection_modifyitems(items):
    """Mark every test in this folder with ``k2``."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.k2)


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder, or skip."""
    if not DATA.is_dir():
        pytest.skip("shared data not available")
    return DATA
