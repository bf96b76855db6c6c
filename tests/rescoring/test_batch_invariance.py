"""A history's LM scores do not depend on which other histories share its batch, bit for bit.

float32 GEMMs round differently for different row counts (torch 1.13 and 2.x alike), so
--shard + merge, --jobs and --batch-size could change the last bits of nnlm scores; every
model call therefore gets exactly --chunk-rows rows.
"""
import torch

from rescorer.rescoring.scoring import ScoreRequest, score_requests
from rescorer.model.checkpoint import load_model

from test_shards import MODEL


def request(generator, count, window, vocabulary_size):
    histories = torch.randint(1, vocabulary_size, (count, window), generator=generator)
    lengths = torch.randint(1, window + 1, (count,), generator=generator)
    queries = torch.arange(count).repeat_interleave(2)
    return ScoreRequest(histories, lengths, queries, torch.randint(1, vocabulary_size, (2 * count,),
                                                                  generator=generator))


def test_scores_of_a_request_alone_equal_its_scores_among_others():
    model, vocabulary = load_model(MODEL)
    window = model.history_window
    generator = torch.Generator().manual_seed(0)
    crowd = [request(generator, count, window, vocabulary.size) for count in (7, 150, 299)]
    for count in (1, 1, 5, 40):
        alone = request(generator, count, window, vocabulary.size)
        (expected,), _ = score_requests(model, [alone], chunk_rows=128)
        for others in ([crowd[0]], crowd[1:], crowd):
            scores, _ = score_requests(model, [*others, alone], chunk_rows=128)
            assert torch.equal(scores[-1], expected), (count, len(others))
            scores, _ = score_requests(model, [alone, *others], chunk_rows=128)
            assert torch.equal(scores[0], expected), (count, len(others))
