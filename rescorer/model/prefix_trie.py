"""History scoring over a prefix trie: each distinct window prefix runs one cell step.

A history is scored from the initial state run over its window (its last K
inputs for a Jacobi model, all of them for a sequential one). Windows share
prefixes: at beam 16 on asr-dev 14,242 windows of up to 4 tokens have 1,848,
5,908, 9,360 and 13,520 distinct prefixes of length 1-4, so running the trie
takes 30,636 cell steps where running every window takes 56,968. Level j of
the trie holds the distinct prefixes of length j + 1; each is its parent's
state advanced by one token::

    windows  [a b c]  [a b d]  [a e]       level 0: a
                                           level 1: ab  ae
                                           level 2: abc abd

The states of two levels are held at a time, for a group of at most
``GROUP_BLOCKS * block_rows`` windows. The input-side gates of layer 0 are
computed once per distinct token.

Every matrix product runs on exactly ``block_rows`` rows (the last block
padded with copies of its first row): float32 products of other row counts
round differently, and a history's scores must not depend on which other
histories share its call. With the BLAS giving a row the same bits wherever
it sits in a block, as MKL does at 256 rows on one thread (products of a few
rows, or several threads, may not), a history's scores are the same bits in
any batch or shard at a given ``block_rows``.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from rescorer.solvers.protocol import State, StepCell

GROUP_BLOCKS = 16  # windows per trie: 16 blocks (4,096 at 256 rows per block)


def left_windows(histories: Tensor, lengths: Tensor, window: Optional[int]) -> Tuple[Tensor, Tensor]:
    """The last min(length, window) inputs of each history, left-aligned.

    Args:
      histories:
        2-D int64 tensor of shape (N, W), left-aligned: row n is
        ``histories[n, :lengths[n]]``, the rest padding.
      lengths:
        1-D int64 tensor of shape (N,), 1 <= lengths[n] <= W.
      window:
        K, or None for the whole history.

    Returns:
      ``(tokens, used)``: tokens (N, W') int64 with row n's window in
      ``tokens[n, :used[n]]`` and 0 after it; used (N,) int64.
    """
    width = int(lengths.max())
    if window is not None:
        width = min(width, window)
    used = lengths.clamp(max=width)  # (N,)
    columns = torch.arange(width, device=histories.device)  # (W',)
    source = (lengths - used).unsqueeze(1) + columns  # (N, W') index into the row
    inside = columns < used.unsqueeze(1)  # (N, W')
    tokens = histories.gather(1, source.clamp(max=histories.shape[1] - 1)).masked_fill(~inside, 0)
    return tokens, used


def padded_block(rows: Tensor, block_rows: int) -> Tensor:
    """``rows`` (n <= block_rows, ...) padded to ``block_rows`` rows with copies of its first."""
    if rows.shape[0] == block_rows:
        return rows
    return torch.cat([rows, rows[:1].expand(block_rows - rows.shape[0], *rows.shape[1:])])


def in_blocks(function: Callable[..., Tuple[Tensor, ...]], inputs: Sequence[Tensor],
              block_rows: int) -> Tuple[Tensor, ...]:
    """``function(*inputs)`` applied to row blocks of exactly ``block_rows`` rows.

    Args:
      function:
        Maps tensors of ``block_rows`` rows each to a tuple of tensors of as many rows.
      inputs:
        Tensors with the same number of rows n >= 1; the last block is padded
        with copies of its first row, and the padding's outputs dropped.

    Returns:
      The outputs for all n rows, in order.
    """
    count = inputs[0].shape[0]
    outputs: List[Tensor] = []
    for start in range(0, count, block_rows):
        size = min(block_rows, count - start)
        results = function(*(padded_block(tensor[start:start + size], block_rows)
                             for tensor in inputs))
        if not outputs:
            outputs = [result.new_empty((count, *result.shape[1:])) for result in results]
        for output, result in zip(outputs, results):
            output[start:start + size] = result[:size]
    return tuple(outputs)


def window_states(embedding: torch.nn.Embedding, cells: Sequence[StepCell], tokens: Tensor,
                  used: Tensor, block_rows: int) -> Tensor:
    """Top-layer state after each window, run from the initial state.

    Windows are taken in groups of at most ``GROUP_BLOCKS * block_rows``, each
    group's trie run alone (memory grows with the group, not with N). With more
    windows than that, they are grouped in lexicographic order, so that windows
    with a common prefix fall in one group.

    Args:
      embedding:
        The input embedding (V rows).
      cells:
        The L stacked cells, bottom first.
      tokens, used:
        ``left_windows`` output: (N, W') int64 and (N,) int64, used >= 1.
      block_rows:
        Rows per matrix product.

    Returns:
      Float tensor of shape (N, H): row n's top-layer hidden state after
      ``tokens[n, :used[n]]``.
    """
    group_rows = GROUP_BLOCKS * block_rows
    if tokens.shape[0] <= group_rows:
        return _trie_states(embedding, cells, tokens, used, block_rows)
    order = torch.arange(tokens.shape[0], device=tokens.device)
    for column in reversed(range(tokens.shape[1])):  # a stable sort per column: lexicographic
        order = order[torch.sort(tokens[order, column], stable=True)[1]]
    final: Optional[Tensor] = None
    for start in range(0, order.numel(), group_rows):
        rows = order[start:start + group_rows]
        states = _trie_states(embedding, cells, tokens[rows], used[rows], block_rows)
        if final is None:
            final = states.new_empty(tokens.shape[0], states.shape[1])
        final[rows] = states
    assert final is not None
    return final


def _trie_states(embedding: torch.nn.Embedding, cells: Sequence[StepCell], tokens: Tensor,
                 used: Tensor, block_rows: int) -> Tensor:
    """``window_states`` of one group: its trie, level by level (see the module docstring)."""
    num_rows, width = tokens.shape
    distinct, token_code = torch.unique(tokens, return_inverse=True)  # (T,), (N, W')
    num_tokens = distinct.numel()
    token_gates, = in_blocks(lambda block: (cells[0].project_input(embedding(block)),),
                             [distinct], block_rows)  # (T, G*H): layer 0's gates per token
    final: Optional[Tensor] = None
    node_of_row = torch.zeros(num_rows, dtype=torch.int64, device=tokens.device)  # last level's
    states: List[Optional[State]] = [None] * len(cells)  # each layer's states of the last level
    for level in range(width):
        rows = (used > level).nonzero().squeeze(1)  # (R,) windows at least level + 1 long
        codes = token_code[rows, level]  # (R,)
        keys = codes if level == 0 else node_of_row[rows] * num_tokens + codes
        nodes, row_node = torch.unique(keys, return_inverse=True)  # (P,) this level's, (R,)
        parents = nodes // num_tokens  # (P,) into the last level's nodes (0 at level 0)
        layer_input = token_gates[nodes % num_tokens]  # (P, G*H)
        for layer, cell in enumerate(cells):  # (the lambdas below run at once)
            if layer > 0:  # the layer below's hidden states -> this layer's input gates
                layer_input, = in_blocks(lambda block: (cell.project_input(block),),
                                         [layer_input], block_rows)
            previous = states[layer]
            if previous is None:
                states[layer] = in_blocks(lambda gates: cell(gates, None),
                                          [layer_input], block_rows)
            else:  # each node's parent's state
                states[layer] = in_blocks(lambda gates, *state: cell(gates, state),
                                          [layer_input, *(part[parents] for part in previous)],
                                          block_rows)
            layer_input = states[layer][0]  # (P, H)
        if final is None:
            final = layer_input.new_empty(num_rows, layer_input.shape[1])
        ending = used[rows] == level + 1  # (R,)
        final[rows[ending]] = layer_input[row_node[ending]]
        node_of_row[rows] = row_node
    assert final is not None, "windows are at least one token long"
    return final
