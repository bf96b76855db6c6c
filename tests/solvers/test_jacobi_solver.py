"""Jacobi solver: K iterations equal the stacked RNN over each position's last K tokens."""
import pytest
import torch

from rescorer.solvers.jacobi import jacobi_solve
from rescorer.solvers.sequential import sequential_solve

CELLS = ["rnn", "gru", "lstm"]
# Two rows of T = 14 with sentence starts inside; sentences longer than K = 3.
ROWS = [[6, 8], [-2, 5, 4, 3]]
EMBED, HIDDEN = 4, 5


def _inputs(helpers, seed=1):
    resets = helpers.sentence_resets(ROWS)
    torch.manual_seed(seed)
    return torch.randn(*resets.shape, EMBED, dtype=torch.float64), resets


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_jacobi_equals_windowed_reference(helpers, cell, layers):
    cells = helpers.build_cells(cell, layers, EMBED, HIDDEN)
    inputs, resets = _inputs(helpers)
    with torch.no_grad():
        hidden, _ = jacobi_solve(cells, inputs, resets, iterations=3)
        expected = helpers.windowed_reference(cells, inputs, resets, window=3)
    torch.testing.assert_close(hidden, expected, rtol=1e-12, atol=1e-12)
    # A 3-gram window differs from the full recurrence once a sentence is longer than 3.
    full = helpers.windowed_reference(cells, inputs, resets, window=None).detach()
    assert (hidden - full).abs().max() > 1e-4


@pytest.mark.parametrize("cell", CELLS)
def test_jacobi_with_k_at_least_sentence_length_equals_sequential(helpers, cell):
    cells = helpers.build_cells(cell, 2, EMBED, HIDDEN)
    inputs, resets = _inputs(helpers)
    with torch.no_grad():
        jacobi, _ = jacobi_solve(cells, inputs, resets, iterations=8)  # longest sentence: 8
        sequential, _ = sequential_solve(cells, inputs, resets)
    torch.testing.assert_close(jacobi, sequential, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("iterations", [1, 2, 4])
def test_jacobi_segments_with_carry_equal_whole_stream(helpers, cell, iterations):
    cells = helpers.build_cells(cell, 2, EMBED, HIDDEN)
    inputs, resets = _inputs(helpers)
    with torch.no_grad():
        whole, whole_carry = jacobi_solve(cells, inputs, resets, iterations)
        pieces, state = [], None
        for begin, end in [(0, 5), (5, 7), (7, 8), (8, 14)]:  # windows cross every boundary
            hidden, state = jacobi_solve(cells, inputs[:, begin:end], resets[:, begin:end], iterations, state)
            pieces.append(hidden)
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, rtol=1e-12, atol=1e-12)
    for carried, expected in zip(state, whole_carry):
        assert carried.shape == (iterations, 2, 2, HIDDEN)  # (K, L, B, H)
        assert torch.equal(carried[0], torch.zeros(2, 2, HIDDEN, dtype=torch.float64))
        torch.testing.assert_close(carried, expected, rtol=1e-12, atol=1e-12)
    # Without the carry the first positions of a segment differ (row 1 is mid-sentence at t = 5).
    cut, _ = jacobi_solve(cells, inputs[:, 5:], resets[:, 5:], iterations)
    assert bool((cut[1, 0] - whole[1, 5]).abs().max() > 1e-4) == (iterations > 1)


@pytest.mark.parametrize("cell", CELLS)
def test_jacobi_gradient_reaches_exactly_k_tokens(helpers, cell):
    cells = helpers.build_cells(cell, 2, EMBED, HIDDEN)
    iterations, position = 4, 10
    inputs = torch.randn(1, 12, EMBED, dtype=torch.float64, requires_grad=True)
    resets = torch.zeros(1, 12, dtype=torch.bool)
    resets[0, 0] = True
    hidden, _ = jacobi_solve(cells, inputs, resets, iterations)
    hidden[0, position].sum().backward()
    gradient = inputs.grad[0].abs().sum(dim=-1)  # (T,)
    window = slice(position - iterations + 1, position + 1)
    assert bool((gradient[window] > 0).all()), gradient
    assert bool((gradient[: position - iterations + 1] == 0).all()), gradient
    assert bool((gradient[position + 1 :] == 0).all()), gradient


@pytest.mark.parametrize("cell", CELLS)
def test_jacobi_dropout_masks_are_reused_by_every_iteration(helpers, cell):
    cells = helpers.build_cells(cell, 3, EMBED, HIDDEN)
    inputs, resets = _inputs(helpers)
    masks = [torch.bernoulli(torch.full((2, 14, HIDDEN), 0.5, dtype=torch.float64)) * 2 for _ in range(2)]
    with torch.no_grad():
        hidden, _ = jacobi_solve(cells, inputs, resets, 3, layer_masks=masks)
        expected = helpers.windowed_reference(cells, inputs, resets, 3, layer_masks=masks)
        unmasked, _ = jacobi_solve(cells, inputs, resets, 3)
    torch.testing.assert_close(hidden, expected, rtol=1e-12, atol=1e-12)
    assert (hidden - unmasked).abs().max() > 1e-3


@pytest.mark.parametrize("solver, window", [("jacobi", 3), ("sequential", None)])
def test_model_train_mode_uses_one_mask_set_per_forward(helpers, solver, window):
    from rescorer.model.config import ModelConfig
    from rescorer.model.lm import FixedPointLM

    torch.manual_seed(0)
    config = ModelConfig(vocab_size=9, layers=3, embed_dim=EMBED, hidden_dim=HIDDEN,
                         dropout=0.4, solver=solver, iterations=3)
    model = FixedPointLM(config).double().train()
    resets = helpers.sentence_resets(ROWS)
    inputs = torch.randint(0, 9, resets.shape)
    torch.manual_seed(7)
    logits, _ = model(inputs, resets)
    torch.manual_seed(7)
    masks = model.sample_dropout_masks(*inputs.shape, inputs.device)
    with torch.no_grad():
        embedded = model.embedding(inputs) * masks.embedding
        top = helpers.windowed_reference(model.cells, embedded, resets, window, masks.between)
        expected = model.output(top * masks.output)
    torch.testing.assert_close(logits, expected, rtol=1e-12, atol=1e-12)
    assert {round(float(value), 6) for value in masks.between[0].unique()} == {0.0, round(1 / 0.6, 6)}
    with torch.no_grad():
        assert (model.eval()(inputs, resets)[0] - logits).abs().max() > 1e-3
