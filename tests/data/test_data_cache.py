"""Token caches: identical to the in-memory stream, keyed, atomic, several files as one corpus."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from rescorer.data import cache as cache_module
from rescorer.data import scan as scan_module
from rescorer.data.batching import contiguous_rows, encode_sentences, sentence_rows
from rescorer.data.corpus import read_sentences
from rescorer.data.prepare import VocabularyRecipe, prepare_corpus
from rescorer.data.rows import evaluation_rows, training_rows
from rescorer.data.vocab import SentencePieceVocabulary, WordVocabulary
from rescorer.errors import ConfigError, InputFormatError

PTB_VALID = Path(__file__).resolve().parents[3] / "shared" / "data" / "ptb" / "ptb.valid.txt"
needs_ptb = pytest.mark.skipif(not PTB_VALID.is_file(), reason="needs ../shared/data/ptb")


def stream_of(cache):
    """The cache as (targets, resets) int64/bool tensors."""
    targets = torch.from_numpy(np.asarray(cache.tokens).astype(np.int64))
    resets = torch.zeros(len(cache), dtype=torch.bool)
    resets[torch.from_numpy(np.array(cache.offsets[:-1]))] = True
    return targets, resets


def assert_same_batches(in_memory, cached, bptt):
    assert in_memory.num_segments(bptt) == cached.num_segments(bptt)
    for index in range(in_memory.num_segments(bptt)):
        expected, got = in_memory.segment(index, bptt), cached.segment(index, bptt)
        for field in ("inputs", "targets", "resets"):
            assert torch.equal(getattr(expected, field), getattr(got, field)), (index, field)


@needs_ptb
@pytest.mark.parametrize("kind", ["word", "sentencepiece"])
def test_ptb_mini_batches_equal_the_in_memory_path(tmp_path, kind):
    """Training rows (1 process and each of 2 ranks) and evaluation rows, segment by segment."""
    sentences = read_sentences(PTB_VALID)
    if kind == "word":
        cache, vocab = prepare_corpus(PTB_VALID, tmp_path)
        assert vocab.words == WordVocabulary.build(sentences).words
    else:
        vocab = SentencePieceVocabulary.train(sentences[:500], 200)
        cache, _ = prepare_corpus(PTB_VALID, tmp_path, vocab)
    stream = encode_sentences(sentences, vocab)
    assert torch.equal(stream_of(cache)[0], stream.targets)
    assert torch.equal(stream_of(cache)[1], stream.resets)
    assert (cache.words, cache.oov_words) == (stream.words, stream.oov_words)
    batch = contiguous_rows(stream, 20)
    assert_same_batches(batch, training_rows(cache, 20), bptt=35)
    for rank, (start, stop) in enumerate([(0, 10), (10, 20)]):
        assert_same_batches(batch.rows(start, stop), training_rows(cache, 20).shard(rank, 2), bptt=35)
    assert_same_batches(sentence_rows(stream, 16), evaluation_rows(cache, 16), bptt=128)


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def test_line_rules_match_read_sentences_across_chunk_boundaries(tmp_path, monkeypatch):
    """Blank lines, CRLF, tabs, a missing final newline; 7-byte chunks cut every line."""
    monkeypatch.setattr(scan_module, "CHUNK_BYTES", 7)
    text = "\n\n the cat  sat \r\n\t\n a\tdog \n\nthe dog sat down\ncat"
    path = write(tmp_path / "t.txt", text)
    cache, vocab = prepare_corpus(path, tmp_path / "cache")
    sentences = read_sentences(path)
    assert sentences == [["the", "cat", "sat"], ["a", "dog"], ["the", "dog", "sat", "down"], ["cat"]]
    stream = encode_sentences(sentences, vocab)
    assert torch.equal(stream_of(cache)[0], stream.targets)
    assert cache.offsets.tolist() == [0, 4, 7, 12, 14]
    assert cache.word_offsets.tolist() == [0, 3, 5, 9, 10]
    write(path, "a bcde\n" + " " * 20)  # 7 bytes, then a last chunk of spaces only
    assert prepare_corpus(path, tmp_path / "cache")[0].offsets.tolist() == [0, 3]


def test_several_files_and_globs_are_one_corpus(tmp_path):
    parts = [write(tmp_path / f"part-{i}.txt", f"w{i} a b\nc w{i}\n") for i in range(3)]
    whole = write(tmp_path / "whole.txt", "".join(part.read_text() for part in parts))
    joined, joined_vocab = prepare_corpus(whole, tmp_path / "c1")
    globbed, globbed_vocab = prepare_corpus(str(tmp_path / "part-*.txt"), tmp_path / "c2")
    listed, _ = prepare_corpus([parts[0], str(tmp_path / "part-[12].txt"), parts[0]], tmp_path / "c3")
    assert joined_vocab.words == globbed_vocab.words
    for cache in (globbed, listed):
        assert np.array_equal(cache.tokens, joined.tokens) and np.array_equal(cache.offsets, joined.offsets)
    with pytest.raises(InputFormatError, match="no file matches it") as error:
        prepare_corpus(str(tmp_path / "nothing-*.txt"), tmp_path / "c4")
    assert error.value.path == str(tmp_path / "nothing-*.txt")


def test_cache_is_reused_when_unchanged_and_rebuilt_when_the_content_changes(tmp_path, monkeypatch):
    path = write(tmp_path / "t.txt", "a b c\nb c\n")
    first, vocab = prepare_corpus(path, tmp_path / "cache")
    builds = []
    original = cache_module.encode_scan
    monkeypatch.setattr("rescorer.data.prepare.encode_scan", lambda *a, **k: builds.append(1) or original(*a, **k))
    again, _ = prepare_corpus(path, tmp_path / "cache", vocab)
    assert again.directory == first.directory and builds == []
    write(path, "a b d\nb c\n")  # same size, other content: a new key
    changed, _ = prepare_corpus(path, tmp_path / "cache", vocab)
    assert changed.directory != first.directory and builds == [1]
    other_vocab = WordVocabulary(["<eos>", "<unk>", "b"])
    keyed, _ = prepare_corpus(path, tmp_path / "cache", other_vocab)
    assert keyed.directory not in (first.directory, changed.directory)
    assert json.loads((keyed.directory / "meta.json").read_text())["oov_words"] == 3  # a, d, c


def test_a_failed_build_leaves_no_entry_and_stale_folders_are_removed(tmp_path, monkeypatch):
    path = write(tmp_path / "t.txt", "a b c\n")
    cache_dir = tmp_path / "cache"
    stale = cache_dir / f"0123.tmp-{2**22 + 12345}"  # a pid that cannot exist (above pid_max's default)
    stale.mkdir(parents=True)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("rescorer.data.prepare.encode_scan", killed)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus(path, cache_dir, WordVocabulary(["<eos>", "<unk>", "a"]))
    assert [entry.name for entry in cache_dir.iterdir()] == []  # no half entry, stale folder gone
    monkeypatch.undo()
    cache, _ = prepare_corpus(path, cache_dir, WordVocabulary(["<eos>", "<unk>", "a"]))
    assert cache.tokens.tolist() == [2, 1, 1, 0]


def test_vocab_size_and_min_count_keep_the_most_frequent_words(tmp_path):
    path = write(tmp_path / "t.txt", "a a a a b b b c c d\na b <unk>\n")
    _, full = prepare_corpus(path, tmp_path / "cache")
    assert full.words == ["<eos>", "<unk>", "a", "b", "c", "d"]
    cache, vocab = prepare_corpus(path, tmp_path / "cache", recipe=VocabularyRecipe(max_vocab_size=4))
    assert vocab.words == ["<eos>", "<unk>", "a", "b"]
    assert (cache.words, cache.oov_words) == (13, 3)  # c, c, d; the literal <unk> is in the vocabulary
    _, counted = prepare_corpus(path, tmp_path / "cache", recipe=VocabularyRecipe(min_count=2))
    assert counted.words == ["<eos>", "<unk>", "a", "b", "c"]
    with pytest.raises(ConfigError, match="--vocab-size must be in"):
        VocabularyRecipe(max_vocab_size=2**30)


def test_large_vocabularies_use_int32_tokens(tmp_path):
    words = [f"w{i}" for i in range(70_000)]
    path = write(tmp_path / "t.txt", " ".join(words) + "\n")
    cache, vocab = prepare_corpus(path, tmp_path / "cache")
    assert vocab.size == 70_002 and cache.tokens.dtype == np.int32
    assert cache.tokens[-2] == vocab.id("w69999") and cache.tokens[-1] == vocab.eos_id


def test_bad_text_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nanother\nbroken \xff here\n")
    with pytest.raises(InputFormatError, match="not UTF-8") as error:
        prepare_corpus(bad, tmp_path / "cache")
    assert (error.value.path, error.value.where) == (str(bad), "line 3")
    bad.write_bytes(b"a\nb\x00c\n")
    with pytest.raises(InputFormatError, match="NUL byte") as error:
        prepare_corpus(bad, tmp_path / "cache")
    assert error.value.where == "line 2"
    write(bad, "\n \n\t\n")
    with pytest.raises(InputFormatError, match="no words"):
        prepare_corpus(bad, tmp_path / "cache")
    assert not [entry for entry in (tmp_path / "cache").iterdir() if entry.is_dir()]


def test_prefix_keeps_whole_sentences(tmp_path):
    path = write(tmp_path / "t.txt", "a b c\nd e\nf\n")  # sentences of 4, 3 and 2 tokens
    cache, _ = prepare_corpus(path, tmp_path / "cache")
    assert [cache.prefix(limit).sentences for limit in (1, 4, 6, 7, 8, 9, None)] == [1, 1, 1, 2, 2, 3, 3]
    small = cache.prefix(7)
    assert (len(small), small.words, small.tokens.tolist()) == (7, 5, cache.tokens[:7].tolist())
    assert evaluation_rows(small, 4).num_rows == 2
