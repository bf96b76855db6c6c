"""--jobs scheduling and the frozen heap the workers are forked with."""
import gc
from pathlib import Path
from types import SimpleNamespace

from rescorer.rescoring.parallel import _largest_first
from rescorer.rescoring.session import frozen_heap



def test_units_go_out_largest_first_and_ties_keep_unit_order():
    items = [(Path("f"), SimpleNamespace(num_arcs=arcs)) for arcs in (5, 9, 4, 20, 13, 1)]
    units = [(0, 1), (1, 3), (3, 4), (4, 6)]  # arcs 5, 13, 20, 14
    assert _largest_first(items, units) == [2, 3, 1, 0]
    tied = [(Path("f"), SimpleNamespace(num_arcs=3)) for _ in range(4)]
    assert _largest_first(tied, [(0, 2), (2, 3), (3, 4)]) == [0, 1, 2]  # 6, 3, 3


def test_frozen_heap_freezes_for_the_block_and_unfreezes_after():
    assert gc.get_freeze_count() == 0
    before = type("Before", (), {})()  # instances of user classes are GC-tracked
    assert any(item is before for item in gc.get_objects())
    with frozen_heap() as freeze:
        frozen = gc.get_freeze_count()
        assert frozen > 0 and not any(item is before for item in gc.get_objects())
        made = type("Made", (), {})()
        assert any(item is made for item in gc.get_objects())  # made later: collected as usual
        freeze()
        assert gc.get_freeze_count() > frozen and not any(item is made for item in gc.get_objects())
    assert gc.get_freeze_count() == 0
    assert any(item is made for item in gc.get_objects())
    assert any(item is before for item in gc.get_objects())


def test_frozen_heap_leaves_a_callers_freeze_alone():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with frozen_heap():
            pass
        assert gc.get_freeze_count() >= frozen > 0
    finally:
        gc.unfreeze()
