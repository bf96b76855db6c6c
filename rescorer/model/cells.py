"""Recurrent cells written for batched solvers.

A cell splits one recurrent step into two matmuls that a solver can batch:

* ``project_input(x)``: W_x x + b for any leading shape, so a solver computes the
  input-side gates of all B x T positions in one matmul;
* ``forward(input_gates, previous)``: W_h h_prev (again one matmul over every
  leading position, e.g. all B x T positions of a Jacobi iteration) followed by
  the elementwise gate non-linearities.

A state is a tuple of tensors with the same leading shape: ``(hidden,)`` for the
RNN and GRU, ``(hidden, cell)`` for the LSTM, each ``(..., H)``. ``previous=None``
stands for the initial (all-zero) state everywhere and skips the recurrent
matmul. Gate layouts follow torch.nn (LSTM: i, f, g, o; GRU: r, z, n), so the
cells agree with ``torch.nn.{RNN,GRU,LSTM}Cell`` given the same weights.
"""
import math
from typing import Optional

import torch
from torch import Tensor, nn

from rescorer.solvers.protocol import State


class RecurrentCell(nn.Module):
    """Base class: input and recurrent projections with ``gates`` blocks of H.

    Args:
      input_dim:
        Size of the input vectors (E for layer 0, H above).
      hidden_dim:
        H, the state size.
      gates:
        Number of H-sized gate blocks (1 RNN, 3 GRU, 4 LSTM).
      recurrent_bias:
        Whether W_h has its own bias (only the GRU needs one, inside r * (...)).
    """

    state_parts = 1

    def __init__(self, input_dim: int, hidden_dim: int, gates: int, recurrent_bias: bool) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.input_projection = nn.Linear(input_dim, gates * hidden_dim)
        self.recurrent_projection = nn.Linear(hidden_dim, gates * hidden_dim, bias=recurrent_bias)
        bound = 1.0 / math.sqrt(hidden_dim)  # torch.nn RNN initialisation
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def project_input(self, inputs: Tensor) -> Tensor:
        """Input-side gates.

        Args:
          inputs:
            Float tensor of shape (..., input_dim).

        Returns:
          Float tensor of shape (..., gates * H): W_x inputs + b.
        """
        return self.input_projection(inputs)

    def add_recurrent_gates(self, input_gates: Tensor, previous: Optional[State]) -> Tensor:
        """input_gates + W_h h_prev as one GEMM with the sum fused (cells without b_h)."""
        if previous is None:
            return input_gates
        hidden = previous[0]
        total = torch.addmm(
            input_gates.reshape(-1, input_gates.shape[-1]),  # (N, G*H), N = all leading positions
            hidden.reshape(-1, hidden.shape[-1]),  # (N, H)
            self.recurrent_projection.weight.t(),  # (H, G*H)
        )
        return total.view(input_gates.shape)

    def forward(self, input_gates: Tensor, previous: Optional[State]) -> State:
        """One recurrent step at every leading position.

        Args:
          input_gates:
            Float tensor of shape (..., gates * H) from ``project_input``.
          previous:
            The state before this step, tensors of shape (..., H), or None for
            the initial (zero) state.

        Returns:
          The new state, tensors of shape (..., H).
        """
        raise NotImplementedError


class ElmanCell(RecurrentCell):
    """h = tanh(W_x x + b + W_h h_prev)."""

    def __init__(self, input_dim: int, hidden_dim: int) -> None:
        super().__init__(input_dim, hidden_dim, gates=1, recurrent_bias=False)

    def forward(self, input_gates: Tensor, previous: Optional[State]) -> State:
        return (torch.tanh(self.add_recurrent_gates(input_gates, previous)),)


class GRUCell(RecurrentCell):
    """torch.nn.GRUCell maths: n = tanh(x_n + r * (W_hn h + b_hn)); h = (1 - z) n + z h_prev."""

    def __init__(self, input_dim: int, hidden_dim: int) -> None:
        super().__init__(input_dim, hidden_dim, gates=3, recurrent_bias=True)

    def forward(self, input_gates: Tensor, previous: Optional[State]) -> State:
        if previous is None:  # W_h 0 + b_h
            recurrent = self.recurrent_projection.bias.to(input_gates.dtype).expand_as(input_gates)
        else:
            recurrent = self.recurrent_projection(previous[0])  # (..., 3H)
        input_r, input_z, input_n = input_gates.chunk(3, dim=-1)
        recurrent_r, recurrent_z, recurrent_n = recurrent.chunk(3, dim=-1)
        reset = torch.sigmoid(input_r + recurrent_r)
        update = torch.sigmoid(input_z + recurrent_z)
        candidate = torch.tanh(input_n + reset * recurrent_n)
        if previous is None:
            return ((1.0 - update) * candidate,)
        return ((1.0 - update) * candidate + update * previous[0],)


class LSTMCell(RecurrentCell):
    """torch.nn.LSTMCell maths with gates i, f, g, o; state (hidden, cell)."""

    state_parts = 2

    def __init__(self, input_dim: int, hidden_dim: int) -> None:
        super().__init__(input_dim, hidden_dim, gates=4, recurrent_bias=False)

    def forward(self, input_gates: Tensor, previous: Optional[State]) -> State:
        total = self.add_recurrent_gates(input_gates, previous)  # (..., 4H)
        input_gate, forget_gate, candidate, output_gate = total.chunk(4, dim=-1)
        cell = torch.sigmoid(input_gate) * torch.tanh(candidate)
        if previous is not None:
            cell = cell + torch.sigmoid(forget_gate) * previous[1]
        hidden = torch.sigmoid(output_gate) * torch.tanh(cell)
        return (hidden, cell)


def make_cell(kind: str, input_dim: int, hidden_dim: int) -> RecurrentCell:
    """The cell named by ``ModelConfig.cell`` ("rnn", "gru" or "lstm")."""
    classes = {"rnn": ElmanCell, "gru": GRUCell, "lstm": LSTMCell}
    return classes[kind](input_dim, hidden_dim)
