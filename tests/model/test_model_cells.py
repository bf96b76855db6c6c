"""Cells agree with torch.nn's cells given the same weights."""
import pytest
import torch

from rescorer.model.cells import make_cell

REFERENCES = {"rnn": torch.nn.RNNCell, "gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_cell_step_matches_torch_cell(kind):
    torch.manual_seed(0)
    cell = make_cell(kind, 3, 4).double()
    reference = REFERENCES[kind](3, 4).double()
    with torch.no_grad():
        reference.weight_ih.copy_(cell.input_projection.weight)
        reference.bias_ih.copy_(cell.input_projection.bias)
        reference.weight_hh.copy_(cell.recurrent_projection.weight)
        recurrent_bias = cell.recurrent_projection.bias
        reference.bias_hh.zero_()
        if recurrent_bias is not None:
            reference.bias_hh.copy_(recurrent_bias)
    inputs = torch.randn(2, 5, 3, dtype=torch.float64)  # any leading shape (B, T)
    previous = tuple(torch.randn(2, 5, 4, dtype=torch.float64) for _ in range(cell.state_parts))
    with torch.no_grad():
        state = cell(cell.project_input(inputs), previous)
        flat_previous = tuple(part.reshape(10, 4) for part in previous)
        expected = reference(inputs.reshape(10, 3), flat_previous if kind == "lstm" else flat_previous[0])
    expected = expected if kind == "lstm" else (expected,)
    assert len(state) == cell.state_parts
    for part, expected_part in zip(state, expected):
        torch.testing.assert_close(part.reshape(10, 4), expected_part, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_none_previous_is_the_zero_state(kind):
    torch.manual_seed(0)
    cell = make_cell(kind, 3, 4).double()
    gates = cell.project_input(torch.randn(6, 3, dtype=torch.float64))
    zeros = tuple(torch.zeros(6, 4, dtype=torch.float64) for _ in range(cell.state_parts))
    with torch.no_grad():
        for part, expected in zip(cell(gates, None), cell(gates, zeros)):
            torch.testing.assert_close(part, expected, rtol=0, atol=1e-15)
