"""FixedPointLM: scoring API equals forward, checkpoint-friendly state, autocast."""
import pytest
import torch

from rescorer.model.config import ModelConfig
from rescorer.model.lm import FixedPointLM, detach_state

VOCAB = 13


def _model(solver, cell="lstm", iterations=3, **changes):
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=VOCAB, cell=cell, layers=2, embed_dim=6, hidden_dim=6,
        solver=solver, iterations=iterations, **changes,
    )
    return FixedPointLM(config).double().eval()


def _stream():
    """Two rows of 12 inputs; sentences start (reset) at 0, 5 and 0, 7."""
    torch.manual_seed(1)
    inputs = torch.randint(1, VOCAB, (2, 12))
    resets = torch.zeros(2, 12, dtype=torch.bool)
    resets[0, [0, 5]] = True
    resets[1, [0, 7]] = True
    inputs[resets] = 0  # bos
    return inputs, resets


def _histories(inputs, resets, keep):
    """One left-aligned history per position: its last ``keep`` inputs since sentence start.

    ``keep=None`` keeps all of them.
    """
    rows, lengths = [], []
    for row in range(inputs.shape[0]):
        start = 0
        for position in range(inputs.shape[1]):
            start = position if resets[row, position] else start
            begin = start if keep is None else max(start, position - keep + 1)
            rows.append(inputs[row, begin : position + 1])
            lengths.append(position + 1 - begin)
    histories = torch.full((len(rows), inputs.shape[1] + 2), VOCAB - 1)  # padding: any id
    for index, tokens in enumerate(rows):
        histories[index, : len(tokens)] = tokens
    return histories, torch.tensor(lengths)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize(
    "solver, keep", [("jacobi", 3), ("jacobi", None), ("jacobi", 5), ("sequential", None)]
)
def test_next_token_log_probs_equal_forward(cell, solver, keep):
    model = _model(solver, cell)
    inputs, resets = _stream()
    with torch.no_grad():
        logits, _ = model(inputs, resets)
    expected = torch.log_softmax(logits, dim=-1).reshape(-1, VOCAB).float()  # (B*T, V)
    histories, lengths = _histories(inputs, resets, keep)
    scores = model.next_token_log_probs(histories, lengths, chunk_rows=5)
    assert scores.dtype == torch.float32 and scores.shape == (24, VOCAB)
    torch.testing.assert_close(scores, expected, rtol=0, atol=1e-6)


def test_jacobi_scores_ignore_tokens_beyond_k_and_train_mode():
    model = _model("jacobi", iterations=2)
    histories = torch.tensor([[0, 4, 5, 6], [0, 9, 5, 6], [3, 3, 5, 6]])
    lengths = torch.tensor([4, 4, 4])
    eval_scores = model.next_token_log_probs(histories, lengths)
    assert torch.equal(eval_scores[0], eval_scores[1]) and torch.equal(eval_scores[0], eval_scores[2])
    model.config.dropout = 0.5
    model.train()
    assert torch.equal(model.next_token_log_probs(histories, lengths), eval_scores)
    # A length-2 history [0, 4] differs from one that ends in 5, 6.
    short = model.next_token_log_probs(histories, torch.tensor([2, 2, 2]))
    assert not torch.allclose(short[0], eval_scores[0])


def test_bad_lengths_are_rejected():
    model = _model("jacobi")
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 3\] \(got min 0, max 2\)"):
        model.next_token_log_probs(torch.zeros(2, 3, dtype=torch.int64), torch.tensor([2, 0]))
    no_rows = torch.zeros(0, 3, dtype=torch.int64)
    empty = model.next_token_log_probs(no_rows, torch.zeros(0, dtype=torch.int64))
    assert empty.shape == (0, VOCAB)


def test_history_window():
    assert _model("jacobi", iterations=5).history_window == 5
    assert _model("sequential").history_window is None


def test_state_dict_and_config_rebuild_an_identical_tied_model():
    model = _model("jacobi", tied=True)
    assert model.output.weight is model.embedding.weight
    rebuilt = FixedPointLM(ModelConfig(**vars(model.config))).double().eval()
    rebuilt.load_state_dict(model.state_dict())
    inputs, resets = _stream()
    with torch.no_grad():
        assert torch.equal(rebuilt(inputs, resets)[0], model(inputs, resets)[0])
    assert rebuilt.output.weight is rebuilt.embedding.weight


@pytest.mark.parametrize("solver", ["jacobi", "sequential"])
def test_bf16_autocast_forward_backward_and_carry(solver):
    model = _model(solver, dropout=0.1).float().train()
    inputs, resets = _stream()
    with torch.no_grad():
        reference, _ = model.eval()(inputs, resets)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, state = model(inputs[:, :6], resets[:, :6])
        logits.float().sum().backward()
        logits, _ = model(inputs[:, 6:], resets[:, 6:], detach_state(state))
    assert torch.isfinite(logits.float()).all()
    assert all(part.grad_fn is None for part in detach_state(state))
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low, _ = model(inputs, resets)
        histories, lengths = _histories(inputs, resets, None)
        scores = model.next_token_log_probs(histories, lengths)
    assert scores.dtype == torch.float32
    assert (low.float() - reference).abs().max() < 0.1
