"""Jacobi (fixed-point) solver: K parallel iterations over all positions.

Iteration k (1..K) updates every layer at every position at once::

    H^0_l[t] = initial state (zeros)
    H^k_l[t] = cell_l(x^k_l[t], H^{k-1}_l[t-1])     x^k_0 = embedding, x^k_l = H^k_{l-1}

so layer l at iteration k reads layer l-1 at the *same* iteration and its own
layer one position back at the *previous* iteration. By induction H^k[t] is the
stacked RNN run from the initial state over exactly the last k tokens, for any
depth L, and the top states after K iterations make a (K+1)-gram model. Where
``resets[b, t]`` is True the shifted state H^{k-1}[t-1] is replaced by the
initial state, so no window crosses a sentence start.

Per iteration and layer there is one input-side matmul (layers >= 1; layer 0's
is done once) and one recurrent matmul, each over all B x T positions.

Carry between contiguous segments: position 0 of the next segment at iteration
k needs H^{k-1}[T-1] of this one, so the carry holds the last position's states
at every iteration 0..K-1::

    carry parts: (K, L, B, H) each; (hidden,) or (hidden, cell) for the LSTM
    carry[p][k, l, b] = part p of H^k_l[T-1] for row b  (k = 0 is the zero state)
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from rescorer.solvers.protocol import State, StepCell


def _shift_states(states: State, first: Optional[State], reset_mask: Tensor) -> State:
    """States of the previous position: H[:, t-1], with ``first`` before t = 0.

    Args:
      states:
        Parts of shape (B, T, H), one iteration of one layer.
      first:
        Parts of shape (B, H), the state before position 0 (from the carry),
        or None for the initial state.
      reset_mask:
        Bool tensor of shape (B, T, 1), True where the previous state is the
        initial state.

    Returns:
      Parts of shape (B, T, H).
    """
    shifted = []
    for index, part in enumerate(states):
        if first is None:
            previous = F.pad(part[:, :-1], (0, 0, 1, 0))  # (B, T, H), zeros at t = 0
        else:
            head = first[index].to(part.dtype).unsqueeze(1)  # (B, 1, H)
            previous = torch.cat([head, part[:, :-1]], dim=1)  # (B, T, H)
        shifted.append(previous.masked_fill(reset_mask, 0.0))
    return tuple(shifted)


def _stack_carry(last: List[List[State]], parts: int, zeros: Tensor) -> State:
    """Carry parts of shape (K, L, B, H).

    Args:
      last:
        [iteration 1..K-1][layer] states at the last position, parts of shape (B, H).
      parts:
        Number of state parts (1, or 2 for the LSTM).
      zeros:
        Float tensor of shape (L, B, H), the zero state at iteration 0.
    """
    carry = []
    for index in range(parts):
        per_iteration = [torch.stack([layer[index] for layer in layers]) for layers in last]
        per_iteration = [zeros] + [states.to(zeros.dtype) for states in per_iteration]
        carry.append(torch.stack(per_iteration))  # (K, L, B, H)
    return tuple(carry)


def jacobi_solve(
    cells: Sequence[StepCell],
    inputs: Tensor,
    resets: Tensor,
    iterations: int,
    state: Optional[State] = None,
    layer_masks: Optional[Sequence[Tensor]] = None,
) -> Tuple[Tensor, State]:
    """Run K Jacobi iterations of the stacked cells over one segment.

    Args:
      cells:
        L cells (``StepCell``, e.g. ``rescorer.model.cells``), bottom first.
      inputs:
        Float tensor of shape (B, T, E), layer-0 inputs (embeddings, dropped out).
      resets:
        Bool tensor of shape (B, T), True where the state before that position is
        the initial state (sentence starts).
      iterations:
        K >= 1.
      state:
        Carry from the previous contiguous segment: parts of shape (K, L, B, H)
        (see module docstring), or None for the initial state.
      layer_masks:
        L - 1 float tensors of shape (B, T, H): dropout masks multiplying layer
        l's output before layer l + 1, reused by every iteration; or None.

    Returns:
      A pair (hidden, carry): hidden is a float tensor of shape (B, T, H), the
      top layer after K iterations; carry has parts of shape (K, L, B, H).
      Gradients flow through all K iterations.
    """
    batch = inputs.shape[0]
    parts = cells[0].state_parts
    if state is not None:
        assert state[0].shape[:3] == (iterations, len(cells), batch), "carry shape mismatch"
    reset_mask = resets.unsqueeze(-1)  # (B, T, 1)
    first_gates = cells[0].project_input(inputs)  # (B, T, G*H), once for all iterations
    current: List[Optional[State]] = [None] * len(cells)  # iteration k-1; None = zeros
    last: List[List[State]] = []  # [iteration 1..K-1][layer] states at t = T-1
    for iteration in range(1, iterations + 1):
        below = None
        for layer, cell in enumerate(cells):
            if layer == 0:
                gates = first_gates
            else:
                layer_input = below if layer_masks is None else below * layer_masks[layer - 1]
                gates = cell.project_input(layer_input)  # (B, T, G*H)
            previous = None  # iteration 1 reads H^0 = zeros everywhere (carry included)
            if iteration > 1:
                first = None if state is None else tuple(p[iteration - 1, layer] for p in state)
                previous = _shift_states(current[layer], first, reset_mask)
            current[layer] = cell(gates, previous)
            below = current[layer][0]  # (B, T, H)
        if iteration < iterations:
            last.append([tuple(p[:, -1] for p in layer_state) for layer_state in current])
    zeros = below.new_zeros(len(cells), batch, below.shape[-1])  # (L, B, H)
    return below, _stack_carry(last, parts, zeros)
