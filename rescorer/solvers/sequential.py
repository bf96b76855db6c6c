"""Sequential solver: the ordinary recurrence through time, trained with BPTT.

Layers run one after another; each computes its input-side gates for all B x T
positions in one matmul and then loops over T for the recurrent part. Where
``resets[b, t]`` is True the state before position t is the initial state.

Carry between contiguous segments: the last position's state of every layer,
parts of shape (L, B, H): ``(hidden,)`` or ``(hidden, cell)`` for the LSTM.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from rescorer.solvers.protocol import State, StepCell


def sequential_solve(
    cells: Sequence[StepCell],
    inputs: Tensor,
    resets: Tensor,
    state: Optional[State] = None,
    layer_masks: Optional[Sequence[Tensor]] = None,
) -> Tuple[Tensor, State]:
    """Run the stacked cells through time over one segment.

    Args:
      cells:
        L cells (``StepCell``, e.g. ``rescorer.model.cells``), bottom first.
      inputs:
        Float tensor of shape (B, T, E), layer-0 inputs (embeddings, dropped out).
      resets:
        Bool tensor of shape (B, T), True where the state before that position is
        the initial state (sentence starts).
      state:
        Carry from the previous contiguous segment, parts of shape (L, B, H), or
        None for the initial state.
      layer_masks:
        L - 1 float tensors of shape (B, T, H): dropout masks multiplying layer
        l's output before layer l + 1; or None.

    Returns:
      A pair (hidden, carry): hidden is a float tensor of shape (B, T, H), the
      top layer's states; carry has parts of shape (L, B, H) (last position).
    """
    reset_mask = resets.unsqueeze(-1)  # (B, T, 1)
    below = inputs
    finals: List[State] = []
    for layer, cell in enumerate(cells):
        if layer > 0 and layer_masks is not None:
            below = below * layer_masks[layer - 1]
        gates = cell.project_input(below)  # (B, T, G*H), one matmul for all positions
        previous: Optional[State] = None
        if state is not None:
            previous = tuple(part[layer].to(gates.dtype) for part in state)  # (B, H) each
        outputs = []
        for time in range(gates.shape[1]):
            if previous is not None:
                previous = tuple(part.masked_fill(reset_mask[:, time], 0.0) for part in previous)
            previous = cell(gates[:, time], previous)
            outputs.append(previous[0])
        below = torch.stack(outputs, dim=1)  # (B, T, H)
        finals.append(previous)
    carry = tuple(torch.stack([final[index] for final in finals]) for index in range(len(finals[0])))
    return below, carry  # carry parts: (L, B, H)
