"""The CLI's GC handling: imports without full collections, no final collection at exit."""
import gc
import sys

import pytest

from rescorer.cli import app as cli_app
from rescorer.cli.common import quiet_imports


def test_quiet_imports_pauses_the_gc_and_moves_new_objects_to_the_oldest_generation():
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.collect()
    with quiet_imports():
        assert not gc.isenabled()
        made = [type("Made", (), {})() for _ in range(1000)]
        assert gc.get_count()[0] >= 1000  # nothing collected while paused
    assert gc.isenabled() and gc.get_freeze_count() == 0  # nothing left frozen
    assert gc.get_count()[0] < 1000  # the objects left the young generation unscanned
    assert any(item is made[0] for item in gc.get_objects(generation=2))


def test_quiet_imports_keeps_a_paused_gc_paused():
    gc.disable()
    try:
        with quiet_imports():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_main_freezes_everything_as_the_process_exits(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["fprescore", "--help"])
    try:
        with pytest.raises(SystemExit) as exit_info:
            cli_app.main()
        assert exit_info.value.code == 0
        assert gc.get_freeze_count() > 0  # the interpreter's last collection has nothing to walk
    finally:
        gc.unfreeze()
