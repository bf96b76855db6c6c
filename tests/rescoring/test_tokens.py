"""Lattice words to LM tokens per arc."""
import pytest
import torch

from rescorer.data.vocab import WordVocabulary
from rescorer.errors import SymbolError
from rescorer.lattice.fsavec import Lattice
from rescorer.lattice.symbols import SymbolTable
from rescorer.rescoring.tokens import ArcTokenizer


def lattice_with_words(word_splits, word_ids) -> Lattice:
    arcs = len(word_splits) - 1
    return Lattice(
        utt_id="utt1", num_states=arcs + 1,
        src=torch.arange(arcs), dst=torch.arange(1, arcs + 1),
        labels=torch.tensor([1] * (arcs - 1) + [-1]),
        word_splits=torch.tensor(word_splits), word_ids=torch.tensor(word_ids, dtype=torch.int64),
        am_scores=torch.zeros(arcs), ngram_scores=torch.zeros(arcs),
    )


def symbols() -> SymbolTable:
    table = SymbolTable()
    for word in ("the", "wasn't", "zzz", "cat"):
        table.add(word)
    return table  # the=1 wasn't=2 zzz=3 cat=4


def test_words_become_tokens_with_clitic_split_unk_and_several_words_per_arc():
    vocabulary = WordVocabulary(["<eos>", "<unk>", "the", "was", "n't", "cat"])
    tokenizer = ArcTokenizer(vocabulary, symbols())
    # arc 0: "the"; arc 1: "wasn't zzz"; arc 2: nothing; arc 3: "the cat" (final arc)
    lattice = lattice_with_words([0, 1, 3, 3, 5], [1, 2, 3, 1, 4])
    arc_tokens = tokenizer.encode(lattice)
    assert arc_tokens.splits.tolist() == [0, 1, 4, 4, 6]
    assert arc_tokens.tokens.tolist() == [2, 3, 4, 1, 2, 5]
    assert arc_tokens.oov_counts.tolist() == [0, 1, 0, 0]


def test_lattice_without_words_has_no_tokens():
    tokenizer = ArcTokenizer(WordVocabulary(["<eos>", "<unk>"]), symbols())
    arc_tokens = tokenizer.encode(lattice_with_words([0, 0, 0], []))
    assert arc_tokens.splits.tolist() == [0, 0, 0]
    assert arc_tokens.tokens.numel() == 0


def test_word_id_missing_from_the_table_names_file_and_utterance():
    tokenizer = ArcTokenizer(WordVocabulary(["<eos>", "<unk>"]), symbols())
    with pytest.raises(SymbolError) as caught:
        tokenizer.encode(lattice_with_words([0, 1, 1], [17]), path="lat.pt")
    assert str(caught.value).startswith("lat.pt: utterance utt1: word id 17 is not in")


@pytest.mark.parametrize("lowercase", [False, True])
def test_oov_flags_alone_equal_those_of_encoding(lowercase):
    """oov_flags works out OOV-ness without tokens; encoding later agrees, in either order."""
    table = symbols()
    for word in ("<unk>", "The", "isn't", "cats'"):
        table.add(word)  # ids 5..8
    vocabulary = WordVocabulary(["<eos>", "<unk>", "the", "was", "n't", "cat", "cats", "'"])
    ids = torch.tensor([8, 1, 2, 3, 4, 5, 6, 7, 2, 8])
    flags_first = ArcTokenizer(vocabulary, table, lowercase).oov_flags(ids)
    encoded_first = ArcTokenizer(vocabulary, table, lowercase)
    encoded_first.prepare(ids)
    expected = [int(vocabulary.is_oov(table.word(i).lower() if lowercase else table.word(i)))
                for i in ids.tolist()]
    assert flags_first.tolist() == encoded_first.oov_flags(ids).tolist() == expected
    assert expected == [0, 0, 0, 1, 0, 0, 0 if lowercase else 1, 1, 0, 0]
    with pytest.raises(SymbolError, match="word id 99 is not in"):
        ArcTokenizer(vocabulary, table).oov_flags(torch.tensor([1, 99]))
