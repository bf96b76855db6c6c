"""Worker results travel as one blob: every tensor comes back equal, in dtype and shape."""
from pathlib import Path

import torch

from rescorer.errors import Failure, InputFormatError
from rescorer.lattice.fsavec import Lattice
from rescorer.rescoring.blobs import pack, unpack


def test_a_value_with_many_tensors_comes_back_equal():
    lattice = Lattice(utt_id="u", num_states=3, src=torch.tensor([0, 1]), dst=torch.tensor([1, 2]),
                      labels=torch.tensor([5, -1]), word_splits=torch.tensor([0, 1, 1]),
                      word_ids=torch.tensor([5]), am_scores=torch.tensor([-1.5, 0.0]),
                      ngram_scores=torch.tensor([-0.25, 0.0]),
                      state_times=torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    value = {
        "items": [(Path("a.slf"), lattice), (Path("b.slf"), Failure(Path("b.slf"), "v", InputFormatError(
            "bad", path="b.slf", utt_id="v")))],
        "grid": torch.arange(12, dtype=torch.float32).view(3, 4).t(),  # 2-D, not contiguous
        "scalar": torch.tensor(7, dtype=torch.int32),
        "empty": torch.zeros(0, dtype=torch.bool),
        "mask": torch.tensor([True, False, True]),
        "half": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),  # no numpy dtype
    }
    back = unpack(pack(value))
    (path, copy), (_, failure) = back["items"]
    assert path == Path("a.slf") and copy.utt_id == "u" and copy.num_states == 3
    for name in ("src", "dst", "labels", "word_splits", "word_ids", "am_scores", "ngram_scores",
                 "state_times"):
        original, returned = getattr(lattice, name), getattr(copy, name)
        assert returned.dtype == original.dtype and torch.equal(returned, original), name
    assert copy.transition_ids is None
    assert failure.utt_id == "v" and str(failure.error) == str(value["items"][1][1].error)
    for name in ("grid", "scalar", "empty", "mask", "half"):
        assert back[name].dtype == value[name].dtype and back[name].shape == value[name].shape
        assert torch.equal(back[name], value[name]), name
