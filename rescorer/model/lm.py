"""The fixed-point recurrent LM: embedding, L recurrent layers, output projection.

Token stream convention (docs/DESIGN.md section 1): a sentence's inputs are
``<bos> w1 .. wn`` and its targets ``w1 .. wn <eos>``; ``resets`` is True at
every ``<bos>`` input, where the state before it is the initial (zero) state.

The model is a plain ``nn.Module``: ``asdict(model.config)`` plus
``model.state_dict()`` describe it completely.
"""
from typing import List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rescorer.model.cells import make_cell
from rescorer.model.config import ModelConfig
from rescorer.solvers.jacobi import jacobi_solve
from rescorer.solvers.protocol import State
from rescorer.solvers.sequential import sequential_solve


class DropoutMasks(NamedTuple):
    """Dropout masks of one forward pass, scaled by 1 / (1 - p).

    Attributes:
      embedding:
        Float tensor of shape (B, T, E), multiplies the embeddings.
      between:
        L - 1 float tensors of shape (B, T, H); entry l multiplies layer l's
        output before layer l + 1 (the same mask in every Jacobi iteration).
      output:
        Float tensor of shape (B, T, H), multiplies the top layer before the
        output projection.
    """

    embedding: Tensor
    between: List[Tensor]
    output: Tensor


def detach_state(state: Optional[State]) -> Optional[State]:
    """The carry with its graph cut, for truncated BPTT between segments.

    Args:
      state:
        The carry ``forward`` returned: float tensors of shape (K, L, B, H)
        (jacobi) or (L, B, H) (sequential), one per state part; or None.

    Returns:
      The same tensors detached (shared storage), or None.
    """
    return None if state is None else tuple(part.detach() for part in state)


class FixedPointLM(nn.Module):
    """Recurrent LM whose states come from a Jacobi or a sequential solver.

    Args:
      config:
        The architecture; kept as ``self.config``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        self.cells = nn.ModuleList(
            make_cell(config.cell, config.embed_dim if layer == 0 else config.hidden_dim, config.hidden_dim)
            for layer in range(config.layers)
        )
        self.output = nn.Linear(config.hidden_dim, config.vocab_size)
        if config.tied:
            self.output.weight = self.embedding.weight

    @property
    def history_window(self) -> Optional[int]:
        """K tokens of history for the Jacobi solver; None (unbounded) for sequential."""
        return self.config.iterations if self.config.solver == "jacobi" else None

    def sample_dropout_masks(self, batch: int, time: int, device: torch.device) -> Optional[DropoutMasks]:
        """Fresh masks for a (B, T) batch, or None in eval mode or when dropout is 0."""
        probability = self.config.dropout
        if not self.training or probability == 0.0:
            return None

        def mask(size: int) -> Tensor:
            keep = torch.full((batch, time, size), 1.0 - probability, device=device)
            return torch.bernoulli(keep) / (1.0 - probability)  # (B, T, size)

        hidden = self.config.hidden_dim
        between = [mask(hidden) for _ in range(self.config.layers - 1)]
        return DropoutMasks(mask(self.config.embed_dim), between, mask(hidden))

    def hidden_states(
        self,
        inputs: Tensor,
        resets: Tensor,
        state: Optional[State] = None,
        masks: Optional[DropoutMasks] = None,
    ) -> Tuple[Tensor, State]:
        """Top-layer states before the output dropout and projection.

        Args:
          inputs:
            2-D int64 tensor of shape (B, T), input token ids.
          resets:
            2-D bool tensor of shape (B, T), True at sentence starts.
          state:
            Solver carry from the previous contiguous segment, or None.
          masks:
            Dropout masks for this batch, or None for no dropout.

        Returns:
          A pair (hidden (B, T, H) float, new solver carry).
        """
        embedded = self.embedding(inputs)  # (B, T, E)
        between = None
        if masks is not None:
            embedded = embedded * masks.embedding
            between = masks.between
        if self.config.solver == "jacobi":
            return jacobi_solve(self.cells, embedded, resets, self.config.iterations, state, between)
        return sequential_solve(self.cells, embedded, resets, state, between)

    def forward(
        self, inputs: Tensor, resets: Tensor, state: Optional[State] = None
    ) -> Tuple[Tensor, State]:
        """Logits for every position of a (segment of a) token stream.

        Args:
          inputs:
            2-D int64 tensor of shape (B, T), input token ids.
          resets:
            2-D bool tensor of shape (B, T), True where the state before that
            position is the initial state (each sentence's ``<bos>`` input).
          state:
            Carry returned by the previous call on the preceding contiguous
            segment (detach it between segments: ``detach_state``), or None for
            the initial state. Jacobi: parts of shape (K, L, B, H); sequential:
            parts of shape (L, B, H); one part per state tensor (LSTM: hidden
            and cell). Segment-wise processing with the carry equals processing
            the whole stream at once.

        Returns:
          A pair (logits, state): logits is a float tensor of shape (B, T, V);
          state is the carry for the next segment. In train mode dropout masks
          are sampled once per call and reused by every Jacobi iteration.
        """
        batch, time = inputs.shape
        masks = self.sample_dropout_masks(batch, time, inputs.device)
        hidden, new_state = self.hidden_states(inputs, resets, state, masks)
        if masks is not None:
            hidden = hidden * masks.output
        return self.output(hidden), new_state  # (B, T, V)

    @torch.no_grad()
    def next_token_log_probs(self, histories: Tensor, lengths: Tensor, chunk_rows: int = 2048) -> Tensor:
        """THE SCORING API: log P(next token | history) for many histories.

        Args:
          histories:
            2-D int64 tensor of shape (N, W), left-aligned: row n holds
            ``histories[n, :lengths[n]]``, the inputs since the sentence start
            (starting with ``bos_id`` when the history reaches the sentence
            start); the rest is padding with any id. For the Jacobi solver only
            the last K tokens of a row matter.
          lengths:
            1-D int64 tensor of shape (N,), 1 <= lengths[n] <= W.
          chunk_rows:
            Rows scored per batch, bounding memory.

        Returns:
          2-D float32 tensor of shape (N, V) on the model's device: the
          log-softmax that ``forward`` gives in eval mode at the position of the
          history's last token (no dropout, whatever the module's mode).

        Caution:
          The last ``min(lengths[n], window)`` tokens of each row are
          right-aligned with a reset at the first of them and run through the
          recurrence from the initial state. For the Jacobi solver that window is
          K and the result is by construction the fixed point that K iterations
          reach (equal to ``forward`` up to float rounding), at K cell steps per
          layer instead of the K * K of running the iterations themselves.
        """
        if histories.dim() != 2 or lengths.shape != histories.shape[:1]:
            raise ValueError(
                "expected histories (N, W) and lengths (N,), "
                f"got {tuple(histories.shape)} and {tuple(lengths.shape)}"
            )
        device = self.output.weight.device
        histories, lengths = histories.to(device), lengths.to(device)
        result = torch.empty(histories.shape[0], self.config.vocab_size, device=device)
        if histories.shape[0] == 0:
            return result
        if int(lengths.min()) < 1 or int(lengths.max()) > histories.shape[1]:
            raise ValueError(
                f"lengths must lie in [1, {histories.shape[1]}] "
                f"(got min {int(lengths.min())}, max {int(lengths.max())})"
            )
        tokens, resets = self._right_align(histories, lengths)
        for start in range(0, histories.shape[0], chunk_rows):
            rows = slice(start, start + chunk_rows)
            embedded = self.embedding(tokens[rows])  # (n, W', E)
            hidden, _ = sequential_solve(self.cells, embedded, resets[rows])  # (n, W', H)
            logits = self.output(hidden[:, -1])  # (n, V)
            result[rows] = F.log_softmax(logits.float(), dim=-1)
        return result

    def _right_align(self, histories: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
        """Last min(length, window) tokens of each row, right-aligned, with resets.

        Returns:
          tokens: (N, W') int64, padding (before the reset) set to 0;
          resets: (N, W') bool, True at each row's first used token.
        """
        width = int(lengths.max())
        if self.history_window is not None:
            width = min(width, self.history_window)
        used = lengths.clamp(max=width)  # (N,)
        columns = torch.arange(width, device=histories.device)  # (W',)
        source = lengths.unsqueeze(1) - width + columns  # (N, W') index into the row
        first = width - used  # (N,) column of each row's first used token
        padding = columns < first.unsqueeze(1)  # (N, W')
        tokens = histories.gather(1, source.clamp(min=0)).masked_fill(padding, 0)
        resets = columns == first.unsqueeze(1)  # (N, W')
        return tokens, resets
