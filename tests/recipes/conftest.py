"""Load the asr-demo helper scripts (recipes/asr-demo/local is not a package)."""
import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCAL = REPO / "recipes" / "asr-demo" / "local"
SHARED_DATA = REPO / ".." / "shared" / "data"


def load_local(name: str):
    """Import ``recipes/asr-demo/local/NAME.py`` as a module."""
    if str(LOCAL) not in sys.path:
        sys.path.insert(0, str(LOCAL))
    spec = importlib.util.spec_from_file_location(name, LOCAL / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def cmudict_path() -> Path:
    """pocketsphinx's dictionary; skips if pocketsphinx is not installed (asr-demo stage 0)."""
    pocketsphinx = pytest.importorskip("pocketsphinx")
    return Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
