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
from rescorer.model.prefix_trie import in_blocks, left_windows, padded_block, window_states
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
    def next_token_log_probs(self, histories: Tensor, lengths: Tensor, chunk_rows: int = 256) -> Tensor:
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
            Rows per matrix product (memory: chunk_rows x V floats at a time).

        Returns:
          2-D float32 tensor of shape (N, V) on the model's device: the
          log-softmax that ``forward`` gives in eval mode at the position of the
          history's last token (no dropout, whatever the module's mode).

        Caution:
          The last ``min(lengths[n], window)`` tokens of each row are run
          through the recurrence from the initial state (``prefix_trie``). For
          the Jacobi solver that window is K and the result is by construction
          the fixed point that K iterations reach (equal to ``forward`` up to
          float rounding), at K cell steps per layer instead of the K * K of
          running the iterations themselves. At a given ``chunk_rows`` a row's
          scores do not depend on the other rows of the call (``prefix_trie``).
        """
        hidden = self._window_states(histories, lengths, chunk_rows)  # (N, H)
        if hidden.shape[0] == 0:
            return hidden.new_empty(0, self.config.vocab_size)
        log_probs, = in_blocks(lambda block: (self._log_softmax(block),), [hidden], chunk_rows)
        return log_probs

    @torch.no_grad()
    def query_log_probs(self, histories: Tensor, lengths: Tensor, query_rows: Tensor,
                        query_tokens: Tensor, chunk_rows: int = 256) -> Tensor:
        """``next_token_log_probs(histories, lengths)[query_rows, query_tokens]``, bit for bit,
        without holding the (N, V) matrix.

        Args:
          histories, lengths:
            As for ``next_token_log_probs``: (N, W) and (N,) int64.
          query_rows:
            1-D int64 tensor of shape (Q,), a row of ``histories`` per query.
          query_tokens:
            1-D int64 tensor of shape (Q,), the next token of each query.
          chunk_rows:
            Rows per matrix product.

        Returns:
          1-D float32 tensor of shape (Q,) on the model's device.

        Raises:
          ValueError: bad shapes, or a query row outside [0, N).
        """
        if query_rows.shape != query_tokens.shape or query_rows.dim() != 1:
            raise ValueError(f"expected query_rows and query_tokens of one shape (Q,), got "
                             f"{tuple(query_rows.shape)} and {tuple(query_tokens.shape)}")
        if query_rows.numel() and not 0 <= int(query_rows.min()) <= int(query_rows.max()) < histories.shape[0]:
            raise ValueError(f"query_rows must lie in [0, {histories.shape[0]})")
        hidden = self._window_states(histories, lengths, chunk_rows)  # (N, H)
        device = hidden.device
        query_rows, query_tokens = query_rows.to(device), query_tokens.to(device)
        order = torch.argsort(query_rows)  # queries grouped by row
        bounds = torch.searchsorted(query_rows[order], torch.arange(
            0, hidden.shape[0] + chunk_rows, chunk_rows, device=device)).tolist()
        scores = torch.empty(query_rows.shape[0], dtype=torch.float32, device=device)
        for block, start in enumerate(range(0, hidden.shape[0], chunk_rows)):
            picked = order[bounds[block]:bounds[block + 1]]
            if picked.numel() == 0:
                continue
            log_probs = self._log_softmax(padded_block(hidden[start:start + chunk_rows], chunk_rows))
            scores[picked] = log_probs[query_rows[picked] - start, query_tokens[picked]]
        return scores

    def _log_softmax(self, hidden: Tensor) -> Tensor:
        """(n, H) top-layer states -> (n, V) float32 next-token log-probabilities."""
        return F.log_softmax(self.output(hidden).float(), dim=-1)

    def _window_states(self, histories: Tensor, lengths: Tensor, chunk_rows: int) -> Tensor:
        """Checked inputs -> (N, H) top-layer state after each row's window (``prefix_trie``)."""
        if histories.dim() != 2 or lengths.shape != histories.shape[:1]:
            raise ValueError(
                "expected histories (N, W) and lengths (N,), "
                f"got {tuple(histories.shape)} and {tuple(lengths.shape)}"
            )
        device = self.output.weight.device
        histories, lengths = histories.to(device), lengths.to(device)
        if histories.shape[0] == 0:
            return torch.empty(0, self.config.hidden_dim, device=device)
        if int(lengths.min()) < 1 or int(lengths.max()) > histories.shape[1]:
            raise ValueError(
                f"lengths must lie in [1, {histories.shape[1]}] "
                f"(got min {int(lengths.min())}, max {int(lengths.max())})"
            )
        tokens, used = left_windows(histories, lengths, self.history_window)
        return window_states(self.embedding, self.cells, tokens, used, chunk_rows)
