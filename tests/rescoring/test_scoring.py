"""Batched scoring: deduplication across lattices and exact query values."""
import torch

from rescorer.model.config import ModelConfig
from rescorer.model.lm import FixedPointLM
from rescorer.rescoring.scoring import ScoreRequest, score_requests, unique_histories


def tiny_model(iterations: int = 2) -> FixedPointLM:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=7, embed_dim=8, hidden_dim=8, iterations=iterations)
    return FixedPointLM(config).eval()


def request(rows, lengths, query_history, query_token) -> ScoreRequest:
    return ScoreRequest(
        histories=torch.tensor(rows, dtype=torch.int64),
        lengths=torch.tensor(lengths, dtype=torch.int64),
        query_history=torch.tensor(query_history, dtype=torch.int64),
        query_token=torch.tensor(query_token, dtype=torch.int64),
    )


def test_histories_are_deduplicated_across_requests_ignoring_padding():
    first = request([[0, 3, 9], [0, 4, 4]], [2, 3], [0, 1], [1, 2])
    second = request([[0, 3], [0, 5]], [2, 1], [0, 1], [1, 2])  # [0,3] again; [0] is new
    rows, lengths, inverse = unique_histories([first, second])
    assert rows.shape[0] == 3
    assert inverse[0] == inverse[2]
    assert len(set(inverse.tolist())) == 3
    assert rows[inverse[3]].tolist()[:1] == [0] and lengths[inverse[3]] == 1


def test_scores_equal_direct_next_token_log_probs_in_any_chunking():
    model = tiny_model()
    first = request([[0, 3, 1], [0, 4, 4]], [2, 3], [0, 1, 1], [1, 2, 0])
    second = request([[0, 3], [0, 5]], [2, 1], [1, 0, 0], [6, 1, 2])
    empty = request(torch.zeros(0, 1).tolist(), [], [], [])
    for chunk_rows in (1, 2, 1024):
        (scores_first, scores_empty, scores_second), stats = score_requests(
            model, [first, empty, second], chunk_rows=chunk_rows
        )
        assert (stats.histories, stats.unique_histories, stats.queries) == (4, 3, 6)
        assert scores_empty.shape == (0,)
        for req, scores in ((first, scores_first), (second, scores_second)):
            direct = model.next_token_log_probs(req.histories, req.lengths)
            expected = direct[req.query_history, req.query_token]
            torch.testing.assert_close(scores, expected, rtol=0, atol=1e-6)
