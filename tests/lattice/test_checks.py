"""The batch check flags what ``Lattice.validate`` rejects, with its message; validate's quick test."""
import math
import random
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "algorithms"))
from lattice_builders import random_lattice  # noqa: E402

from rescorer.errors import InputFormatError  # noqa: E402
from rescorer.lattice.batch import LatticeBatch  # noqa: E402
from rescorer.lattice.checks import invalid_utterances, split_invalid  # noqa: E402
from rescorer.lattice.fsavec import Lattice  # noqa: E402


def _broken(lattice, kind: str):
    """``lattice`` with one invariant broken (``kind``), or as it is for "ok"."""
    final = lattice.num_states - 1
    if kind == "ok":
        return lattice
    if kind == "word 0" and lattice.word_ids.numel():
        word_ids = lattice.word_ids.clone()
        word_ids[-1] = 0
        return replace(lattice, word_ids=word_ids)
    if kind == "nan am":
        am = lattice.am_scores.clone()
        am[-1] = math.nan
        return replace(lattice, am_scores=am)
    if kind == "inf ngram":
        ngram = lattice.ngram_scores.clone()
        ngram[0] = -math.inf
        return replace(lattice, ngram_scores=ngram)
    if kind == "dst past final":  # lands on the next lattice's start state in the batch
        dst = lattice.dst.clone()
        dst[0] = final + 1
        return replace(lattice, dst=dst)
    if kind == "src negative":
        src = lattice.src.clone()
        src[-1] = -1
        return replace(lattice, src=src)
    if kind in ("src int64 max", "dst int64 max", "dst int64 min"):  # where +-1 would wrap
        column, end = kind.split()[0], kind.split()[-1]
        values = getattr(lattice, column).clone()
        values[0] = getattr(torch.iinfo(torch.int64), end)
        return replace(lattice, **{column: values})
    if kind == "label -1 inside":  # or a word label into the final state
        labels = lattice.labels.clone()
        labels[0] = 7 if int(lattice.dst[0]) == final else -1
        return replace(lattice, labels=labels)
    if kind == "label -2":
        labels = torch.where(lattice.dst == final, lattice.labels, torch.full_like(lattice.labels, -2))
        return replace(lattice, labels=labels)
    if kind == "nothing into final":  # one more state, which no arc enters
        return replace(lattice, num_states=lattice.num_states + 1,
                       labels=torch.where(lattice.labels == -1, torch.zeros_like(lattice.labels),
                                          lattice.labels))
    return lattice  # "word 0" on a lattice without words


KINDS = ["ok", "word 0", "nan am", "inf ngram", "dst past final", "src negative",
         "src int64 max", "dst int64 max", "dst int64 min", "label -1 inside", "label -2", "nothing into final"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flags_exactly_what_validate_rejects_with_its_message(seed):
    rng = random.Random(seed)
    lattices, expected = [], []
    for index in range(40):
        lattice, _ = random_lattice(rng)
        lattice = _broken(replace(lattice, utt_id=f"u{index}"), rng.choice(KINDS))
        try:
            lattice.validate("f.slf")
            expected.append(None)
        except InputFormatError as error:
            expected.append(str(error))
        lattices.append(lattice)
    assert any(expected) and not all(expected)
    batch = LatticeBatch.from_lattices(lattices)
    assert invalid_utterances(batch).tolist() == [message is not None for message in expected]
    kept, failures, indices = split_invalid(batch, [Path("f.slf")] * batch.num_utts)
    assert indices == [index for index, message in enumerate(expected) if message is None]
    assert [str(failure.error) for failure in failures] == [m for m in expected if m is not None]
    assert kept.utt_ids == [f"u{index}" for index in indices]


def _chain():
    """0 --a--> 1 --b--> 2 --(-1)--> 3, with words 1 and 2."""
    return Lattice(utt_id="u", num_states=4, src=torch.tensor([0, 1, 2]),
                   dst=torch.tensor([1, 2, 3]), labels=torch.tensor([1, 2, -1]),
                   word_splits=torch.tensor([0, 1, 2, 2]), word_ids=torch.tensor([1, 2]),
                   am_scores=torch.tensor([-1.0, -2.0, 0.0]),
                   ngram_scores=torch.tensor([-0.5, -0.5, 0.0]))


@pytest.mark.parametrize("kind", KINDS[1:])
def test_validate_rejects_every_broken_kind(kind):
    with pytest.raises(InputFormatError, match=r"f.slf: utterance u: "):
        _broken(_chain(), kind).validate("f.slf")


def test_validate_accepts_finite_scores_whose_sum_overflows():
    big = torch.tensor([3e38, 3e38, 0.0])
    assert math.isinf(float((big + big)[0]))
    replace(_chain(), am_scores=big, ngram_scores=big).validate("f.slf")
    _chain().validate("f.slf")
    overflowing = LatticeBatch.from_lattices([replace(_chain(), am_scores=big, ngram_scores=big)])
    assert invalid_utterances(overflowing).tolist() == [False]
