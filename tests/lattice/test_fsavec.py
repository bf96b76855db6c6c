"""Lattice invariants: validate() accepts good lattices and names the problem in bad ones."""
import dataclasses

import pytest
import torch

from rescorer.errors import InputFormatError
from rescorer.lattice.fsavec import Lattice, splits_from_counts, words_from_labels


def two_word_lattice() -> Lattice:
    """0 --a(1)--> 1 --b(2),c(3)--> 2 --(-1)--> 3 (the middle arc carries two words)."""
    return Lattice(
        utt_id="u1",
        num_states=4,
        src=torch.tensor([0, 1, 2]),
        dst=torch.tensor([1, 2, 3]),
        labels=torch.tensor([1, 2, -1]),
        word_splits=torch.tensor([0, 1, 3, 3]),
        word_ids=torch.tensor([1, 2, 3]),
        am_scores=torch.tensor([-1.0, -2.0, 0.0]),
        ngram_scores=torch.tensor([-0.5, -0.25, 0.0]),
    )


def test_valid_lattice_passes_and_exposes_words():
    lattice = two_word_lattice()
    lattice.validate("x.pt")
    assert lattice.num_arcs == 3
    assert lattice.words_per_arc.tolist() == [1, 2, 0]
    assert [lattice.arc_words(a) for a in range(3)] == [[1], [2, 3], []]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"labels": torch.tensor([1, -1, -1])}, "arc 1 has label -1 and destination 2"),
        ({"labels": torch.tensor([1, 2, 5])}, "arc 2 has label 5 and destination 3"),
        ({"dst": torch.tensor([1, 2, 4])}, "state 4 out of range (expected 0..3)"),
        ({"src": torch.tensor([0, 3, 2])}, "arc 1 leaves the final state 3"),
        ({"word_ids": torch.tensor([1, 0, 3])}, "word id 0 on an arc"),
        ({"word_splits": torch.tensor([0, 1, 3])}, "word_splits has 3 entries"),
        ({"am_scores": torch.tensor([-1.0, float("nan"), 0.0])}, "arc 1 has a non-finite score"),
        ({"ngram_scores": torch.tensor([0.0, 0.0])}, "ngram_scores has shape (2,)"),
        ({"num_states": 1}, "expected >= 2 states, got 1"),
    ],
)
def test_invalid_lattices_raise_naming_file_and_utterance(change, message):
    lattice = dataclasses.replace(two_word_lattice(), **change)
    with pytest.raises(InputFormatError) as caught:
        lattice.validate("lat.pt")
    assert str(caught.value).startswith("lat.pt: utterance u1: ")
    assert message in str(caught.value)


def test_no_arc_into_final_state_is_rejected():
    # 5 states: the final state is 4, which no arc enters (the -1 arc goes to 3)
    lattice = dataclasses.replace(two_word_lattice(), num_states=5)
    with pytest.raises(InputFormatError, match="utterance u1: no arc enters the final state 4"):
        lattice.validate()


def test_splits_and_words_from_labels():
    assert splits_from_counts(torch.tensor([2, 0, 1])).tolist() == [0, 2, 2, 3]
    splits, words = words_from_labels(torch.tensor([5, 0, 7, -1], dtype=torch.int32))
    assert splits.tolist() == [0, 1, 1, 2, 2]
    assert words.tolist() == [5, 7] and words.dtype == torch.int64
