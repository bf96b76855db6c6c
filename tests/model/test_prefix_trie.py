"""The prefix trie: each window run alone, and the same bits in any company."""
import pytest
import torch

from rescorer.model.config import ModelConfig
from rescorer.model.lm import FixedPointLM
from rescorer.model import prefix_trie
from rescorer.model.prefix_trie import left_windows, window_states
from rescorer.solvers.sequential import sequential_solve

VOCAB = 40  # E = H = 32: one thread gives a row the same bits at any place in a block


def _model(cell, layers=2, solver="jacobi", iterations=3, dtype=torch.float32):
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=VOCAB, cell=cell, layers=layers, embed_dim=32, hidden_dim=32,
                         solver=solver, iterations=iterations)
    return FixedPointLM(config).to(dtype).eval()


def _histories(count, width, seed):
    """Left-aligned histories over few tokens (so windows share prefixes), padding 9."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, width + 1, (count,), generator=generator)
    histories = torch.randint(0, 3, (count, width), generator=generator)
    histories[torch.arange(width) >= lengths.unsqueeze(1)] = 9
    return histories, lengths


def test_left_windows_keep_the_last_k_inputs():
    histories = torch.tensor([[5, 6, 7, 8], [5, 6, 9, 9], [4, 9, 9, 9]])
    tokens, used = left_windows(histories, torch.tensor([4, 2, 1]), window=3)
    assert tokens.tolist() == [[6, 7, 8], [5, 6, 0], [4, 0, 0]]
    assert used.tolist() == [3, 2, 1]
    tokens, used = left_windows(histories, torch.tensor([4, 2, 1]), window=None)
    assert tokens.tolist() == [[5, 6, 7, 8], [5, 6, 0, 0], [4, 0, 0, 0]] and used.tolist() == [4, 2, 1]


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("block_rows", [1, 3, 64])
def test_trie_states_equal_each_window_run_alone(cell, block_rows):
    model = _model(cell, dtype=torch.float64)
    histories, lengths = _histories(40, 6, seed=1)
    tokens, used = left_windows(histories, lengths, window=None)
    with torch.no_grad():
        states = window_states(model.embedding, model.cells, tokens, used, block_rows)
        for row in range(histories.shape[0]):
            window = histories[row:row + 1, :int(lengths[row])]
            resets = torch.zeros_like(window, dtype=torch.bool)
            resets[0, 0] = True
            alone, _ = sequential_solve(model.cells, model.embedding(window), resets)
            torch.testing.assert_close(states[row], alone[0, -1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_history_scores_the_same_bits_in_any_company(cell):
    """float32: alone, among 200 others (crossing block edges) and in another order."""
    model = _model(cell, iterations=4)
    histories, lengths = _histories(200, 7, seed=2)
    rows = torch.arange(200).repeat_interleave(2)
    tokens = torch.randint(0, VOCAB, (400,), generator=torch.Generator().manual_seed(3))
    together = model.query_log_probs(histories, lengths, rows, tokens, chunk_rows=16)
    shuffled = torch.randperm(200, generator=torch.Generator().manual_seed(4))
    inverse = torch.argsort(shuffled)
    again = model.query_log_probs(histories[shuffled], lengths[shuffled], inverse[rows], tokens,
                                  chunk_rows=16)
    assert torch.equal(together, again)
    for row in (0, 17, 199):
        picked = rows == row
        alone = model.query_log_probs(histories[row:row + 1], lengths[row:row + 1],
                                      torch.zeros(int(picked.sum()), dtype=torch.int64),
                                      tokens[picked], chunk_rows=16)
        assert torch.equal(alone, together[picked])


def test_query_log_probs_pick_from_next_token_log_probs_bit_for_bit():
    model = _model("lstm", layers=1, solver="sequential")
    histories, lengths = _histories(50, 5, seed=5)
    full = model.next_token_log_probs(histories, lengths, chunk_rows=8)  # (50, V)
    rows = torch.tensor([49, 0, 3, 3, 17])
    tokens = torch.tensor([0, 10, 2, 5, 1])
    picked = model.query_log_probs(histories, lengths, rows, tokens, chunk_rows=8)
    assert torch.equal(picked, full[rows, tokens])
    empty = model.query_log_probs(histories[:0], lengths[:0], rows[:0], tokens[:0])
    assert empty.shape == (0,)


def test_windows_in_groups_give_one_trie_s_bits(monkeypatch):
    """Over GROUP_BLOCKS * block_rows windows, tries of lexicographic groups: the same bits."""
    model = _model("lstm")
    histories, lengths = _histories(700, 6, seed=6)
    tokens, used = left_windows(histories, lengths, window=4)
    with torch.no_grad():
        grouped = window_states(model.embedding, model.cells, tokens, used, block_rows=4)
        monkeypatch.setattr(prefix_trie, "GROUP_BLOCKS", 1_000)  # one trie of all 700
        whole = window_states(model.embedding, model.cells, tokens, used, block_rows=4)
    assert prefix_trie.GROUP_BLOCKS * 4 > 700 > 16 * 4
    assert torch.equal(grouped, whole)


@pytest.mark.parametrize("rows, tokens", [([3], [0, 1]), ([5], [0]), ([-1], [0]), ([[0]], [[0]])])
def test_bad_queries_are_rejected(rows, tokens):
    model = _model("gru")
    histories, lengths = _histories(5, 3, seed=7)
    with pytest.raises(ValueError):
        model.query_log_probs(histories, lengths, torch.tensor(rows), torch.tensor(tokens))
    with pytest.raises(ValueError):
        model.query_log_probs(histories[:0], lengths[:0], torch.tensor([0]), torch.tensor([0]))
