"""Stage timing: nested stages count once, untimed stages are None (a fake clock, no sleeping)."""
from types import SimpleNamespace

from rescorer.rescoring import timing
from rescorer.rescoring.timing import Timings, stage


def fake_clock(monkeypatch, ticks):
    """perf_counter/process_time return the next value of ``ticks`` (CPU = wall / 2)."""
    values = iter(ticks)
    state = {}

    def wall():
        state["now"] = next(values)
        return state["now"]

    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=wall,
                                                        process_time=lambda: state["now"] / 2))


def test_nested_stages_are_exclusive_and_summed(monkeypatch):
    # expand opens at 0, prune runs 1..4 inside it, expand closes at 10; a second expand 20..22.
    fake_clock(monkeypatch, [0.0, 1.0, 4.0, 10.0, 20.0, 22.0])
    timings = Timings()
    with timings.activate():
        with stage("expand"):
            with stage("prune"):
                pass
        with stage("expand"):
            pass
    assert timings.seconds == {"expand": 1.0 + 6.0 + 2.0, "prune": 3.0}
    assert timings.cpu_seconds == {"expand": 4.5, "prune": 1.5}
    assert timings.get("score") is None and timings.cpu("read") is None


def test_stage_outside_an_active_timings_only_runs_the_block(monkeypatch):
    fake_clock(monkeypatch, [])  # the clock must not even be read
    ran = []
    with stage("read"):
        ran.append(True)
    assert ran == [True]


def test_add_sums_another_processes_stages():
    mine = Timings(seconds={"read": 1.0}, cpu_seconds={"read": 0.5}, total=9.0)
    mine.add(Timings(seconds={"read": 2.0, "score": 3.0}, cpu_seconds={"read": 1.0, "score": 2.5}, total=5.0))
    assert mine.seconds == {"read": 3.0, "score": 3.0} and mine.cpu_seconds == {"read": 1.5, "score": 2.5}
    assert mine.total == 9.0
