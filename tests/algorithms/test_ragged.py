"""Ragged and segment helpers against plain-torch / Python references."""
import torch

from rescorer.algorithms.ragged import (
    expand_ranges, segment_logsumexp, select_rows, unique_rows,
)


def test_unique_rows_equals_torch_unique_dim():
    generator = torch.Generator().manual_seed(0)
    for low, high, columns in [(-1, 3, 4), (-1, 10**6, 5), (0, 2**40, 3), (-(2**40), 5, 2)]:
        rows = torch.randint(low, high, (500, columns), generator=generator)
        rows = torch.cat([rows, rows[:100]])  # guaranteed repeats
        expected, expected_inverse = torch.unique(rows, dim=0, return_inverse=True)
        distinct, inverse = unique_rows(rows)
        assert torch.equal(distinct, expected)
        assert torch.equal(inverse, expected_inverse)
    distinct, inverse = unique_rows(torch.zeros(0, 3, dtype=torch.int64))
    assert distinct.shape == (0, 3) and inverse.numel() == 0


def test_expand_ranges_and_select_rows():
    assert expand_ranges(torch.tensor([5, 0, 2]), torch.tensor([2, 0, 3])).tolist() == [5, 6, 2, 3, 4]
    splits, values = torch.tensor([0, 2, 2, 5]), torch.tensor([1, 2, 3, 4, 5])
    new_splits, new_values = select_rows(splits, values, torch.tensor([2, 1, 0, 2]))
    assert new_splits.tolist() == [0, 3, 3, 5, 8]
    assert new_values.tolist() == [3, 4, 5, 1, 2, 3, 4, 5]


def test_segment_logsumexp_handles_empty_and_minus_infinity():
    values = torch.tensor([0.0, 0.0, float("-inf"), 1000.0, 1000.0], dtype=torch.float64)
    result = segment_logsumexp(values, torch.tensor([0, 0, 1, 3, 3]), 4)
    assert result[0].item() == torch.log(torch.tensor(2.0, dtype=torch.float64)).item()
    assert result[1].item() == float("-inf") and result[2].item() == float("-inf")
    assert result[3].item() == 1000.0 + torch.log(torch.tensor(2.0, dtype=torch.float64)).item()
