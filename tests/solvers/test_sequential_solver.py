"""Sequential solver: the recurrence through time, with resets and segment carry."""
import pytest
import torch

from rescorer.solvers.jacobi import jacobi_solve
from rescorer.solvers.sequential import sequential_solve

CELLS = ["rnn", "gru", "lstm"]
ROWS = [[6, 8], [-2, 5, 4, 3]]
EMBED, HIDDEN = 4, 5


def _inputs(helpers, seed=1):
    resets = helpers.sentence_resets(ROWS)
    torch.manual_seed(seed)
    return torch.randn(*resets.shape, EMBED, dtype=torch.float64), resets


@pytest.mark.parametrize("cell", CELLS)
def test_sequential_equals_whole_sentence_reference(helpers, cell):
    cells = helpers.build_cells(cell, 2, EMBED, HIDDEN)
    inputs, resets = _inputs(helpers)
    with torch.no_grad():
        hidden, _ = sequential_solve(cells, inputs, resets)
        expected = helpers.windowed_reference(cells, inputs, resets, window=None)
    torch.testing.assert_close(hidden, expected, rtol=1e-12, atol=1e-12)


def test_sequential_lstm_matches_torch_lstm(helpers):
    cells = helpers.build_cells("lstm", 2, EMBED, HIDDEN)
    reference = torch.nn.LSTM(EMBED, HIDDEN, num_layers=2, batch_first=True).double()
    with torch.no_grad():
        for layer, cell in enumerate(cells):
            getattr(reference, f"weight_ih_l{layer}").copy_(cell.input_projection.weight)
            getattr(reference, f"bias_ih_l{layer}").copy_(cell.input_projection.bias)
            getattr(reference, f"weight_hh_l{layer}").copy_(cell.recurrent_projection.weight)
            getattr(reference, f"bias_hh_l{layer}").zero_()
        inputs = torch.randn(3, 9, EMBED, dtype=torch.float64)
        resets = torch.zeros(3, 9, dtype=torch.bool)
        hidden, (last_hidden, last_cell) = sequential_solve(cells, inputs, resets)
        expected, (expected_hidden, expected_cell) = reference(inputs)
    torch.testing.assert_close(hidden, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(last_hidden, expected_hidden, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(last_cell, expected_cell, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_sequential_segments_with_carry_equal_whole_stream(helpers, cell):
    cells = helpers.build_cells(cell, 2, EMBED, HIDDEN)
    inputs, resets = _inputs(helpers)
    with torch.no_grad():
        whole, _ = sequential_solve(cells, inputs, resets)
        pieces, state = [], None
        for begin, end in [(0, 5), (5, 7), (7, 8), (8, 14)]:
            hidden, state = sequential_solve(cells, inputs[:, begin:end], resets[:, begin:end], state)
            pieces.append(hidden)
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("solver", ["jacobi", "sequential"])
def test_previous_sentence_never_changes_the_next_one(helpers, cell, solver):
    cells = helpers.build_cells(cell, 2, EMBED, HIDDEN)
    inputs, resets = _inputs(helpers)  # row 0: sentences [0, 6) and [6, 14)
    changed = inputs.clone()
    changed[0, :6] = torch.randn(6, EMBED, dtype=torch.float64) * 3
    carry_shape = (3, 2, 2, HIDDEN) if solver == "jacobi" else (2, 2, HIDDEN)  # (K,) L, B, H
    carry = tuple(torch.randn(carry_shape, dtype=torch.float64) for _ in range(cells[0].state_parts))

    def run(values, state):
        if solver == "jacobi":
            return jacobi_solve(cells, values, resets, 3, state)[0]
        return sequential_solve(cells, values, resets, state)[0]

    with torch.no_grad():
        original = run(inputs, None)
        assert torch.equal(run(changed, None)[0, 6:], original[0, 6:])
        assert not torch.equal(run(changed, None)[0, :6], original[0, :6])
        # A carry from an earlier segment cannot leak past a reset either (row 0 starts with one).
        assert torch.equal(run(inputs, carry)[0], original[0])
