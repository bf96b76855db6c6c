"""SymbolTable: words.txt parsing with file/line errors, lookups, growth, atomic writing."""
import pytest
import torch

from rescorer.errors import SymbolError
from rescorer.lattice.symbols import SymbolTable


def write(tmp_path, text: str):
    path = tmp_path / "words.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_read_lookup_and_write_round_trip(tmp_path):
    path = write(tmp_path, "<eps> 0\nthe 1\n\ncat 2\nsat 5\n")
    table = SymbolTable.from_file(path)
    assert (table.id("cat"), table.word(5), table.max_id, len(table)) == (2, "sat", 5, 4)
    assert list(table) == ["<eps>", "the", "cat", "sat"]
    assert not table.grown
    out = tmp_path / "out" / "words.txt"
    table.write(out)
    assert out.read_text() == "<eps> 0\nthe 1\ncat 2\nsat 5\n"


def test_add_grows_from_max_id():
    table = SymbolTable()
    assert (table.add("a"), table.add("b"), table.add("a")) == (1, 2, 1)
    assert table.grown and table.to_text() == "<eps> 0\na 1\nb 2\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("<eps> 0\nthe\n", "line 2: expected `word id`"),
        ("<eps> 0\nthe x1\n", "line 2: bad id 'x1'"),
        ("<eps> 0\nthe -3\n", "line 2: bad id '-3'"),
        ("<eps> 0\nthe 1\nthe 2\n", "line 3: word 'the' appears twice (first with id 1)"),
        ("<eps> 0\nthe 1\ncat 1\n", "line 3: id 1 appears twice (first for 'the')"),
        ("<eps> 3\nthe 0\n", "id 0 must be <eps>"),
        ("\n\n", "the symbol table is empty"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SymbolError) as caught:
        SymbolTable.from_file(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(SymbolError, match="cannot read the symbol table"):
        SymbolTable.from_file(tmp_path / "nope.txt")


def test_unknown_word_and_id_name_the_lattice(tmp_path):
    table = SymbolTable.from_file(write(tmp_path, "<eps> 0\nthe 1\ncat 3\n"))
    with pytest.raises(SymbolError, match=r"lat.slf: utterance u7: word 'dog' is not in .*words.txt"):
        table.id("dog", path="lat.slf", utt_id="u7")
    with pytest.raises(SymbolError, match=r"word id 9 is not in .*\(ids go up to 3"):
        table.word(9)


def test_check_ids_finds_gaps_beyond_and_negative_ids(tmp_path):
    table = SymbolTable.from_file(write(tmp_path, "<eps> 0\nthe 1\ncat 3\n"))
    table.check_ids(torch.tensor([1, 3, 3, 1]))
    table.check_ids(torch.tensor([], dtype=torch.int64))
    for bad, first in ((torch.tensor([1, 2, 3]), 2), (torch.tensor([3, 40]), 40),
                       (torch.tensor([1, -5]), -5)):
        with pytest.raises(SymbolError, match=f"utterance u: word id {first} is not in"):
            table.check_ids(bad, path="l.pt", utt_id="u")


def test_lookup_all_is_lookup_of_each_word_in_order(tmp_path):
    table = SymbolTable()
    table.add("b")
    assert table.lookup_all(["a", "b", "c", "a", "<eps>"]) == [2, 1, 3, 2, 0]
    words = tmp_path / "words.txt"
    words.write_text("<eps> 0\nx 1\ny 2\n")
    frozen = SymbolTable.from_file(words)
    assert frozen.lookup_all(["y", "x"]) == [2, 1]
    with pytest.raises(SymbolError, match="'zz' is not in"):
        frozen.lookup_all(["x", "zz", "qq"], path="p.slf", utt_id="u")


def test_known_ids_of_a_dense_table_with_holes(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("<eps> 0\na 1\nb 2\nd 4\n")
    table = SymbolTable.from_file(path)
    ids = torch.tensor([0, 1, 2, 3, 4, 5, -1, 2**40])
    assert table.known(ids).tolist() == [True, True, True, False, True, False, False, False]
    table.frozen = False
    table.add("e")  # id 5; the cached mask follows the table
    assert table.known(ids).tolist() == [True, True, True, False, True, True, False, False]


def _skip_bracketed(word: str) -> bool:
    return word.startswith("[")


def test_lookup_words_remembers_ids_and_skipped_words_exactly(tmp_path):
    table = SymbolTable()
    table.add("b")
    assert table.remembered_ids(["a", None], _skip_bracketed) == [None, None]  # nothing asked yet
    # New words numbered in the order asked; None and skipped words are 0 and never added.
    assert table.lookup_words(["a", None, "[x]", "b", "c", "a"], _skip_bracketed) == \
        [2, 0, 0, 1, 3, 2]
    assert list(table) == ["<eps>", "b", "a", "c"]
    table.add("d")  # the table grows outside the memo: remembered ids stay the table's
    assert table.remembered_ids(["c", "[x]", None, "d", "b"], _skip_bracketed) == \
        [3, 0, 0, None, 1]
    assert table.lookup_words(["e", "d"], _skip_bracketed) == [5, 4]
    assert table.remembered_ids(["d", "e"], _skip_bracketed) == [4, 5]
    assert table.remembered_ids(["a"], lambda word: True) == [None]  # one memo per skip rule
    frozen = SymbolTable.from_file(write(tmp_path, "<eps> 0\nx 1\n[y] 2\n"))
    with pytest.raises(SymbolError, match=r"p.slf: utterance u: word 'zz' is not in"):
        frozen.lookup_words(["x", "[y]", "zz", "qq"], _skip_bracketed, path="p.slf", utt_id="u")
    assert frozen.remembered_ids(["x", "[y]", "zz"], _skip_bracketed) == [1, 0, None]
    assert len(frozen) == 3
