"""Token streams and batches: resets exactly at sentence starts, full coverage."""
import torch

from rescorer.data.batching import IGNORE_INDEX, contiguous_rows, encode_sentences, sentence_rows, shard_rows
from rescorer.data.vocab import WordVocabulary

SENTENCES = [["the", "cat", "sat"], ["a", "dog"], ["the", "dog", "sat", "down"], ["cat"]]


def make_stream(sentences=SENTENCES):
    vocab = WordVocabulary.build(sentences)
    return vocab, encode_sentences(sentences, vocab)


def test_stream_is_targets_shifted_with_resets_at_sentence_starts():
    vocab, stream = make_stream()
    words = ["the", "cat", "sat", "<eos>", "a", "dog", "<eos>", "the", "dog", "sat", "down", "<eos>", "cat", "<eos>"]
    assert stream.targets.tolist() == [vocab.id(word) for word in words]
    assert stream.inputs.tolist() == [vocab.eos_id] + stream.targets.tolist()[:-1]
    assert torch.nonzero(stream.resets).squeeze(1).tolist() == [0, 4, 7, 12]
    # A reset is exactly where the input is <eos> (= <bos>) in a word stream.
    assert torch.equal(stream.resets, stream.inputs == vocab.eos_id)
    assert (stream.words, stream.oov_words) == (10, 0)


def test_oov_words_are_counted_and_clitics_split():
    vocab = WordVocabulary.build([["was", "n't", "it"]])
    stream = encode_sentences([["wasn't", "zebra", "it"]], vocab)
    assert stream.targets.tolist() == [vocab.id("was"), vocab.id("n't"), vocab.unk_id, vocab.id("it"), vocab.eos_id]
    assert (stream.words, stream.oov_words) == (3, 1)
    assert stream.resets.tolist() == [True, False, False, False, False]


def test_contiguous_rows_and_segments_cover_the_stream():
    _, stream = make_stream()
    batch = contiguous_rows(stream, rows=3)  # 14 tokens -> 3 rows of 4, 2 dropped
    assert batch.inputs.shape == (3, 4)
    assert torch.equal(batch.inputs.reshape(-1), stream.inputs[:12])
    assert torch.equal(batch.resets.reshape(-1), stream.resets[:12])
    segments = list(batch.segments(bptt=3))
    assert [segment.inputs.shape[1] for segment in segments] == [3, 1]
    assert batch.num_segments(3) == 2
    assert torch.equal(torch.cat([segment.targets for segment in segments], dim=1), batch.targets)


def test_sentence_rows_start_at_sentences_and_score_each_token_once():
    _, stream = make_stream(SENTENCES * 5)
    batch = sentence_rows(stream, rows=4)
    assert batch.inputs.shape[0] == 4
    assert batch.resets[:, 0].all()
    valid = batch.targets != IGNORE_INDEX
    assert int(valid.sum()) == len(stream)
    assert torch.equal(batch.targets[valid], stream.targets)  # row-major order = stream order
    assert torch.equal(batch.inputs[valid], stream.inputs)
    assert torch.equal(batch.resets[valid], stream.resets)


def test_sentence_rows_never_exceed_sentences():
    _, stream = make_stream([["one", "sentence"]])
    batch = sentence_rows(stream, rows=8)
    assert batch.inputs.shape == (1, 3)


def test_shard_rows_partition():
    shards = [shard_rows(10, rank, 3) for rank in range(3)]
    assert shards == [(0, 4), (4, 7), (7, 10)]
    assert [shard_rows(4, rank, 2) for rank in range(2)] == [(0, 2), (2, 4)]
