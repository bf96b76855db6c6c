"""Atomic writes leave either the old file or the complete new one."""
import os
import stat

import pytest

from rescorer.atomic import atomic_open, atomic_write_text


def test_write_then_replace(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "first\n")
    atomic_write_text(target, "second\n")
    assert target.read_text() == "second\n"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_failure_keeps_old_content_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as handle:
            handle.write("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_permissions_follow_the_umask_like_open(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "out.txt"
        atomic_write_text(target, "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def _killed_writer_leftover(target):
    """Start a writer in another process, kill -9 it mid-write, return its leftover temp."""
    import signal
    import subprocess
    import sys
    import time

    code = ("import sys, time\n"
            "from rescorer.atomic import atomic_open\n"
            "with atomic_open(sys.argv[1]) as handle:\n"
            "    handle.write('half'); handle.flush(); print('writing', flush=True); time.sleep(60)\n")
    writer = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert writer.stdout.readline() == "writing\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    leftovers = [p for p in target.parent.iterdir() if p.name != target.name]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(f".{target.name}.")
    return leftovers[0]


def test_next_write_removes_the_temp_of_a_writer_killed_with_sigkill(tmp_path):
    target = tmp_path / "onebest.txt"
    leftover = _killed_writer_leftover(target)
    atomic_write_text(target, "complete\n")
    assert target.read_text() == "complete\n"
    assert not leftover.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["onebest.txt"]


def test_a_live_writers_temp_is_kept(tmp_path):
    from rescorer.atomic import remove_stale_temps

    target = tmp_path / "out.txt"
    with atomic_open(target) as handle:  # this process is alive: its temp must survive
        handle.write("x")
        temp = next(p for p in tmp_path.iterdir() if p.name != "out.txt")
        assert remove_stale_temps(target) == 0
        assert temp.exists()
    assert target.read_text() == "x"


def test_leftover_temps_are_hidden_from_folder_readers(tmp_path):
    from rescorer.formats.detect import lattice_files

    target = tmp_path / "a.slf"
    leftover = _killed_writer_leftover(target)
    assert leftover.name.startswith(".") and lattice_files([tmp_path]) == []
