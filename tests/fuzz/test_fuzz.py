"""A seeded fuzz run of every reader path in the normal suite (bench/fuzz.py runs long ones).

Each format's inputs must give zero crashes and no hang: only clean reads or
``RescorerError`` rejections. Kaldi archives (text and binary) have their own test.
"""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

pytestmark = pytest.mark.skipif(not harness.DATA.is_dir(), reason="shared data not available")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return harness.make_seeds(tmp_path_factory.mktemp("seeds"), small=True)


def campaign(seeds, kinds, count, tmp_path):
    chosen = [seed for seed in seeds if seed.kind in kinds]
    counts = harness.run_campaign(chosen, count, seed=20261201, out=tmp_path, jobs=1, time_cap=10)
    assert counts.tried == count
    assert counts.parsed + counts.rejected + counts.crashed == count
    return counts


def test_slf_and_k2_inputs_never_crash(seeds, tmp_path):
    counts = campaign(seeds, {"slf", "k2"}, 1500, tmp_path)
    assert counts.crashes == {} and counts.hangs == 0, sorted((tmp_path / "crashes").iterdir())
    assert counts.parsed > 100 and counts.rejected > 100  # the mutations reach both outcomes


def test_kaldi_text_and_binary_inputs_never_crash(seeds, tmp_path):
    assert {seed.name for seed in seeds if seed.kind == "kaldi"} == {"theanolm.lat", "lat.1.ark"}
    counts = campaign(seeds, {"kaldi"}, 1000, tmp_path)
    assert counts.crashes == {} and counts.hangs == 0, sorted((tmp_path / "crashes").iterdir())


def test_inputs_are_reproducible_from_seed_and_index(seeds):
    first = harness.fuzzed_input(seeds, 7, 123)
    again = harness.fuzzed_input(seeds, 7, 123)
    assert first[1:] == again[1:] and first[0].name == again[0].name
    assert harness.fuzzed_input(seeds, 7, 124)[1] != first[1]
