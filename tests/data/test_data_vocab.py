"""Vocabularies: word ids, PTB clitic split, OOV, state round trips, sentencepiece."""
import io

import pytest
import torch

from rescorer.data.vocab import SentencePieceVocabulary, Vocabulary, WordVocabulary, split_clitic
from rescorer.errors import ConfigError, InputFormatError

WORDS = [["was", "n't", "ca", "wo", "company", "'s", "they", "'re", "we", "'ve", "'ll", "'d", "i", "'m", "was"]]


def test_specials_come_first_then_by_frequency():
    vocab = WordVocabulary.build([["b", "a", "a"], ["c", "b", "a"]])
    assert vocab.words == ["<eos>", "<unk>", "a", "b", "c"]
    assert (vocab.eos_id, vocab.bos_id, vocab.unk_id, vocab.size) == (0, 0, 1, 5)


@pytest.mark.parametrize(
    "word, parts",
    [("wasn't", ["was", "n't"]), ("can't", ["ca", "n't"]), ("won't", ["wo", "n't"]),
     ("company's", ["company", "'s"]), ("they're", ["they", "'re"]), ("we've", ["we", "'ve"]),
     ("we'll", ["we", "'ll"]), ("i'd", ["i", "'d"]), ("i'm", ["i", "'m"])],
)
def test_clitic_split_maps_to_ptb_tokens(word, parts):
    vocab = WordVocabulary.build(WORDS)
    assert split_clitic(word) == parts
    assert vocab.encode_word(word) == [vocab.id(part) for part in parts]
    assert not vocab.is_oov(word)


def test_known_word_unknown_word_and_unknown_stem():
    vocab = WordVocabulary.build(WORDS)
    assert vocab.encode_word("company") == [vocab.id("company")]
    assert vocab.encode_word("zebra") == [vocab.unk_id]
    assert vocab.encode_word("zebra's") == [vocab.unk_id]  # stem unknown: no partial split
    assert vocab.is_oov("zebra") and vocab.is_oov("zebra's")
    assert not vocab.is_oov("<unk>")
    assert split_clitic("'s") is None and split_clitic("cat") is None


def test_word_state_loads_with_weights_only():
    vocab = WordVocabulary.build(WORDS)
    buffer = io.BytesIO()
    torch.save(vocab.to_state(), buffer)
    buffer.seek(0)
    again = Vocabulary.from_state(torch.load(buffer, weights_only=True))
    assert again.words == vocab.words and again.encode_word("wasn't") == vocab.encode_word("wasn't")


def test_bad_word_lists_and_states_are_refused():
    with pytest.raises(ConfigError, match="lacks <unk>"):
        WordVocabulary(["<eos>", "a"])
    with pytest.raises(ConfigError, match="duplicate"):
        WordVocabulary(["<eos>", "<unk>", "a", "a"])
    with pytest.raises(ConfigError, match="unknown vocabulary state"):
        Vocabulary.from_state({"kind": "bpe"})


@pytest.fixture(scope="module")
def sentencepiece_vocab():
    sentences = [f"the company {word} was n't here today".split() for word in ("sold", "bought", "made", "lost")] * 50
    return SentencePieceVocabulary.train(sentences, vocab_size=40)


def test_sentencepiece_pieces_and_state_round_trip(sentencepiece_vocab):
    vocab = sentencepiece_vocab
    assert vocab.size <= 40 and vocab.bos_id == vocab.eos_id == 1 and vocab.unk_id == 0
    pieces = vocab.encode_word("company")
    assert len(pieces) >= 1 and vocab.unk_id not in pieces
    assert vocab.processor.DecodeIds(pieces) == "company"
    buffer = io.BytesIO()
    torch.save(vocab.to_state(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["model_proto"].dtype == torch.uint8
    again = Vocabulary.from_state(state)
    assert again.size == vocab.size
    for word in ("company", "today", "wasn't", "xyzzy"):
        assert again.encode_word(word) == vocab.encode_word(word)
    assert again.is_oov("qqq") and not again.is_oov("company")  # "q" never seen -> <unk> piece


def test_sentencepiece_model_file(tmp_path, sentencepiece_vocab):
    path = tmp_path / "sp.model"
    path.write_bytes(sentencepiece_vocab.model_proto)
    assert SentencePieceVocabulary.from_file(path).encode_word("today") == sentencepiece_vocab.encode_word("today")
    (tmp_path / "junk.model").write_bytes(b"not a model")
    with pytest.raises(InputFormatError) as error:
        SentencePieceVocabulary.from_file(tmp_path / "junk.model")
    assert error.value.path == str(tmp_path / "junk.model")


def test_sentencepiece_literal_unk_is_one_oov_symbol():
    """PTB's literal <unk> (6% of its tokens) is the unknown piece, not "▁ < unk >" pieces."""
    sentences = [["the", "<unk>", "company", "said"], ["<unk>", "rose", "<unk>"], ["the", "company", "rose"]] * 20
    vocab = SentencePieceVocabulary.train(sentences, vocab_size=40)
    assert vocab.processor.IdToPiece(vocab.unk_id) == "<unk>"
    assert vocab.encode_word("<unk>") == [vocab.unk_id]
    assert vocab.is_oov("<unk>") and not vocab.is_oov("company")
    assert not any("unk" in vocab.processor.IdToPiece(index) for index in range(vocab.size) if index != vocab.unk_id)
    # The rescoring tokenizer takes the OOV flag from is_oov, so the OOV penalty applies to it.
    from rescorer.lattice.symbols import SymbolTable
    from rescorer.rescoring.tokens import ArcTokenizer

    symbols = SymbolTable()
    word_id = symbols.add("<unk>")
    tokenizer = ArcTokenizer(vocab, symbols)
    one_word = torch.tensor([word_id])
    assert tokenizer.encode_words(torch.tensor([0, 1]), one_word).tokens.tolist() == [vocab.unk_id]
    assert tokenizer.oov_flags(one_word).tolist() == [1]


def test_sentencepiece_sampling_bounds_the_training_sentences():
    """With sample_sentences, sentencepiece keeps that many sentences (its input_sentence_size)."""
    sentences = [[f"word{i % 97}", "common"] for i in range(2000)]
    small = SentencePieceVocabulary.train(sentences, vocab_size=30, sample_sentences=101)  # its minimum
    again = SentencePieceVocabulary.train(sentences, vocab_size=30, sample_sentences=101)
    assert small.model_proto == again.model_proto  # seeded sample
    full = SentencePieceVocabulary.train(sentences, vocab_size=30)
    assert small.model_proto != full.model_proto
