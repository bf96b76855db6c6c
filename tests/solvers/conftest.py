"""Builders shared by the solver tests: tiny float64 cells, streams, a naive reference."""
from types import SimpleNamespace
from typing import List, Optional, Sequence

import pytest
import torch
from torch import Tensor, nn

from rescorer.model.cells import make_cell


def build_cells(kind: str, layers: int, input_dim: int, hidden_dim: int, seed: int = 0) -> nn.ModuleList:
    """L float64 cells with fixed random weights."""
    torch.manual_seed(seed)
    cells = nn.ModuleList(
        make_cell(kind, input_dim if layer == 0 else hidden_dim, hidden_dim) for layer in range(layers)
    )
    return cells.double()


def sentence_resets(rows: Sequence[Sequence[int]]) -> Tensor:
    """(B, T) bool resets from per-row sentence lengths; rows must sum to the same T.

    A row starting mid-sentence is written with a leading 0-length marker of -n:
    ``[-3, 5]`` means the row starts with the last 3 tokens of an earlier
    sentence (no reset at t = 0), then a 5-token sentence.
    """
    resets = []
    for lengths in rows:
        row: List[bool] = []
        for length in lengths:
            row += [length > 0] + [False] * (abs(length) - 1)
        resets.append(row)
    return torch.tensor(resets, dtype=torch.bool)


def windowed_reference(
    cells: nn.ModuleList,
    inputs: Tensor,
    resets: Tensor,
    window: Optional[int],
    layer_masks: Optional[Sequence[Tensor]] = None,
) -> Tensor:
    """Top states (B, T, H): for each position, the stacked RNN run step by step
    from the initial state over that position's last ``window`` inputs within its
    sentence (the whole sentence so far if ``window`` is None)."""
    batch, time, _ = inputs.shape
    outputs = torch.zeros(batch, time, cells[0].hidden_dim, dtype=inputs.dtype)
    for row in range(batch):
        sentence_start = 0
        for position in range(time):
            if resets[row, position]:
                sentence_start = position
            begin = sentence_start if window is None else max(sentence_start, position - window + 1)
            states: List[Optional[tuple]] = [None] * len(cells)
            for step in range(begin, position + 1):
                below = inputs[row, step]
                for layer, cell in enumerate(cells):
                    if layer > 0 and layer_masks is not None:
                        below = below * layer_masks[layer - 1][row, step]
                    states[layer] = cell(cell.project_input(below), states[layer])
                    below = states[layer][0]
            outputs[row, position] = below
    return outputs


@pytest.fixture
def helpers():
    """The builders above, as one namespace for tests."""

    return SimpleNamespace(
        build_cells=build_cells, sentence_resets=sentence_resets, windowed_reference=windowed_reference
    )
