"""What the solvers need from a recurrent cell, so that solvers never import the model.

A solver runs any stack of cells that satisfy ``StepCell``; ``rescorer.model.cells``
provides them. The dependency points one way only: model -> solvers.

A state is a tuple of tensors with the same leading shape: ``(hidden,)`` for the
RNN and GRU, ``(hidden, cell)`` for the LSTM, each ``(..., H)``.
"""
from typing import Optional, Protocol, Tuple

from torch import Tensor

State = Tuple[Tensor, ...]


class StepCell(Protocol):
    """One recurrent layer, split into an input-side and a recurrent step.

    Attributes:
      state_parts:
        Number of tensors in the state (1, or 2 for the LSTM).
    """

    state_parts: int

    def project_input(self, inputs: Tensor) -> Tensor:
        """Float tensor of shape (..., G*H): the input-side gates of ``inputs`` (..., input_dim)."""

    def __call__(self, input_gates: Tensor, previous: Optional[State]) -> State:
        """The new state (tensors of shape (..., H)); ``previous=None`` is the zero state."""
