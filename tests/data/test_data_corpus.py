"""Corpus readers: PTB and WikiText-2 line handling, with counts from the real files."""
from pathlib import Path

import pytest

from rescorer.data.batching import encode_sentences
from rescorer.data.corpus import corpus_files, read_sentences
from rescorer.data.vocab import WordVocabulary
from rescorer.errors import ConfigError, InputFormatError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")


def test_ptb_style_lines_keep_words_only(tmp_path):
    path = tmp_path / "ptb.train.txt"
    path.write_text(" the cat sat \n a dog 's bone \n")
    assert read_sentences(path) == [["the", "cat", "sat"], ["a", "dog", "'s", "bone"]]


def test_wikitext_headings_are_sentences_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "wiki.train.tokens"
    path.write_text(" \n = Robert <unk> = \n \n Robert is an actor . \n\n")
    assert read_sentences(path) == [["=", "Robert", "<unk>", "="], ["Robert", "is", "an", "actor", "."]]


@needs_shared
def test_ptb_valid_counts():
    # wc: 3,370 lines, 70,390 words; the standard stream has 73,760 tokens with <eos>.
    sentences = read_sentences(SHARED / "ptb" / "ptb.valid.txt")
    assert len(sentences) == 3370
    assert sum(map(len, sentences)) == 70390
    stream = encode_sentences(sentences, WordVocabulary.build(sentences))
    assert len(stream) == 73760
    assert stream.oov_words == 0


@needs_shared
def test_wikitext2_test_counts():
    # 4,358 lines of which 1,467 blank; 241,211 words (wc).
    sentences = read_sentences(SHARED / "wikitext-2" / "test.txt")
    assert len(sentences) == 4358 - 1467
    assert sum(map(len, sentences)) == 241211
    assert sentences[0] == ["=", "Robert", "<unk>", "="]


def test_corpus_files_finds_both_wikitext_layouts(tmp_path):
    for name in ("wiki.train.tokens", "valid.txt"):
        (tmp_path / name).write_text("a\n")
    files = corpus_files("wikitext2", tmp_path)
    assert files == {"train": tmp_path / "wiki.train.tokens", "valid": tmp_path / "valid.txt"}


def test_missing_training_file_names_folder_and_command(tmp_path):
    with pytest.raises(InputFormatError, match="ptb.train.txt.*fprescore data download ptb") as error:
        corpus_files("ptb", tmp_path)
    assert error.value.path == str(tmp_path)
    with pytest.raises(ConfigError, match="unknown corpus"):
        corpus_files("c4", tmp_path)


def test_non_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good line\nstill good\nbad \xff byte\n")
    with pytest.raises(InputFormatError) as error:
        read_sentences(path)
    assert error.value.path == str(path)
    assert error.value.where == "line 3"


def test_empty_and_missing_files_are_errors(tmp_path):
    (tmp_path / "empty.txt").write_text(" \n\n")
    with pytest.raises(InputFormatError, match="no words"):
        read_sentences(tmp_path / "empty.txt")
    with pytest.raises(InputFormatError, match="file not found"):
        read_sentences(tmp_path / "absent.txt")
