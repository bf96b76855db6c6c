"""``fprescore convert`` through CliRunner: outputs, exit codes and stderr messages."""
from typer.testing import CliRunner

from rescorer.cli.app import app
from rescorer.errors import EXIT_ERROR, EXIT_PARTIAL
from rescorer import read_lattices
from rescorer.formats.slf import read_slf
from rescorer.lattice.symbols import SymbolTable

runner = CliRunner()


def squeeze(text: str) -> str:
    """Text without white space and table borders (rich wraps long lines and cells)."""
    return "".join(c for c in text if not c.isspace() and c not in "│┃")

# 0 -hello-> 1 -world-> 2 (end); a= and l= chosen so that am/ngram are exact binary floats
SLF = "UTTERANCE=utt1\nN=3 L=2\nI=0\nI=1 W=hello\nI=2 W=world\nJ=0 S=0 E=1 a=-1.5 l=-2\nJ=1 S=1 E=2 a=-0.5 l=-1\n"


def inputs(tmp_path, bad=False):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.slf").write_text(SLF)
    (folder / "b.slf").write_text(SLF.replace("utt1", "utt2").replace("world", "there"))
    if bad:
        (folder / "c.slf").write_text(SLF.replace("N=3 L=2", "N=3 L=7"))
    return folder


def test_slf_to_k2_writes_fsa_vec_and_grown_words(tmp_path):
    result = runner.invoke(app, ["convert", str(inputs(tmp_path)), "--to", "k2",
                                 "--out", str(tmp_path / "out" / "lats.pt")])
    assert result.exit_code == 0, result.output
    assert "wrote 2 lattice(s)" in result.stdout
    words = SymbolTable.from_file(tmp_path / "out" / "words.txt")
    assert list(words) == ["<eps>", "hello", "world", "there"]
    first, second = read_lattices(tmp_path / "out" / "lats.pt", words).to_lattices()
    assert (first.utt_id, second.utt_id) == ("utt1", "utt2")
    assert [words.word(w) for w in second.word_ids.tolist()] == ["hello", "there"]
    assert first.am_scores.tolist() == [-1.5, -0.5, 0.0]
    assert first.ngram_scores.tolist() == [-2.0, -1.0, 0.0]


def test_k2_to_slf_needs_words_and_round_trips(tmp_path):
    k2_file = tmp_path / "lats.pt"
    runner.invoke(app, ["convert", str(inputs(tmp_path)), "--to", "k2", "--out", str(k2_file),
                        "--words-out", str(tmp_path / "w.txt")])
    result = runner.invoke(app, ["convert", str(k2_file), "--to", "slf", "--out", str(tmp_path / "s")])
    assert result.exit_code == EXIT_ERROR  # every lattice failed
    assert squeeze("ids: --words words.txt is") in squeeze(result.stderr)  # cells wrap
    result = runner.invoke(app, ["convert", str(k2_file), "--to", "slf", "--out", str(tmp_path / "s"),
                                 "--words", str(tmp_path / "w.txt")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["utt1.slf", "utt2.slf"]
    (again,), _ = read_slf(tmp_path / "s" / "utt2.slf", SymbolTable.from_file(tmp_path / "w.txt"))
    assert again.am_scores.tolist() == [-1.5, -0.5, 0.0]


def test_bad_file_is_skipped_listed_and_exit_3(tmp_path):
    result = runner.invoke(app, ["convert", str(inputs(tmp_path, bad=True)), "--to", "k2",
                                 "--out", str(tmp_path / "lats.pt")])
    assert result.exit_code == EXIT_PARTIAL
    assert "wrote 2 lattice(s)" in result.stdout
    assert "c.slf" in result.stderr and squeeze("L=7 but 2 link lines") in squeeze(result.stderr)
    assert read_lattices(tmp_path / "lats.pt", SymbolTable.from_file(tmp_path / "words.txt")).num_utts == 2


def test_strict_stops_with_one_line_naming_the_file(tmp_path):
    folder = inputs(tmp_path, bad=True)
    result = runner.invoke(app, ["convert", str(folder), "--to", "k2", "--strict",
                                 "--out", str(tmp_path / "lats.pt")])
    assert result.exit_code == EXIT_ERROR
    assert squeeze(f"error: {folder / 'c.slf'}: utterance utt1: line 2: L=7 but 2 link lines") \
        in squeeze(result.stderr)
    assert not (tmp_path / "lats.pt").exists()


def test_words_file_errors_and_bad_target(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("<eps> 0\nhello x\n")
    result = runner.invoke(app, ["convert", str(inputs(tmp_path)), "--to", "k2", "--out",
                                 str(tmp_path / "l.pt"), "--words", str(words)])
    assert result.exit_code == EXIT_ERROR
    assert squeeze(f"error: {words}: line 2: bad id 'x'") in squeeze(result.stderr)
    result = runner.invoke(app, ["convert", str(tmp_path), "--to", "fst", "--out", "x"])
    assert result.exit_code == 2


def test_repeated_utterance_ids_are_rejected_not_overwritten(tmp_path):
    folder = inputs(tmp_path)
    (folder / "c.slf").write_text(SLF.replace("hello", "there"))  # utt1 again
    for target, out in (("slf", tmp_path / "s"), ("k2", tmp_path / "l.pt"), ("kaldi", tmp_path / "l.ark")):
        result = runner.invoke(app, ["convert", str(folder), "--to", target, "--out", str(out)])
        assert result.exit_code == EXIT_PARTIAL, result.output
        assert "wrote 2 lattice(s)" in result.stdout
        assert "twice" in result.stderr and "c.slf" in result.stderr  # table cells wrap
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["utt1.slf", "utt2.slf"]
    (kept,), _ = read_slf(tmp_path / "s" / "utt1.slf")
    assert kept.word_ids.numel() == 2  # a.slf's utt1 ("hello world"), not c.slf's
    words = SymbolTable.from_file(tmp_path / "words.txt")
    assert read_lattices(tmp_path / "l.pt", words).utt_ids == ["utt1", "utt2"]


def test_no_lattice_at_all_is_exit_1(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["convert", str(empty), "--to", "k2", "--out", str(tmp_path / "l.pt")])
    assert result.exit_code == EXIT_ERROR
    assert "no lattices found" in result.stderr and not (tmp_path / "l.pt").exists()
    assert "wrote" not in result.stdout  # nothing was written, so nothing is claimed
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "c.slf").write_text(SLF.replace("N=3 L=2", "N=3 L=7"))
    result = runner.invoke(app, ["convert", str(bad), "--to", "slf", "--out", str(tmp_path / "s")])
    assert result.exit_code == EXIT_ERROR
    assert squeeze("no lattices could be converted") in squeeze(result.stderr)
    assert "wrote" not in result.stdout


def test_unsafe_utterance_ids_stay_inside_the_folder_and_visible(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for index, utt_id in enumerate(["../evil", '""', ".hidden", "a/b", "a_b"]):
        (folder / f"{index}.slf").write_text(SLF.replace("UTTERANCE=utt1", f"UTTERANCE={utt_id}"))
    out = tmp_path / "out" / "s"
    result = runner.invoke(app, ["convert", str(folder), "--to", "slf", "--out", str(out)])
    assert result.exit_code == EXIT_PARTIAL  # a_b clashes with a/b
    assert sorted(p.name for p in out.iterdir()) == ["_.slf", "___evil.slf", "_hidden.slf", "a_b.slf"]
    assert not (tmp_path / "out" / "evil.slf").exists()
    assert "would be written to a_b.slf" in result.stderr and "4.slf" in result.stderr


def test_existing_different_words_txt_is_not_overwritten(tmp_path):
    out = tmp_path / "out" / "lats.pt"
    command = ["convert", str(inputs(tmp_path)), "--to", "k2", "--out", str(out)]
    assert runner.invoke(app, command).exit_code == 0
    again = runner.invoke(app, command)  # same table: a rerun is fine
    assert again.exit_code == 0, again.output
    words = tmp_path / "out" / "words.txt"
    words.write_text("<eps> 0\nother 1\n")
    out.unlink()
    refused = runner.invoke(app, command)
    assert refused.exit_code == EXIT_ERROR and "--words-out" in squeeze(refused.stderr)
    assert words.read_text() == "<eps> 0\nother 1\n" and not out.exists()
    kept = runner.invoke(app, command + ["--words-out", str(tmp_path / "w2.txt")])
    assert kept.exit_code == 0 and (tmp_path / "w2.txt").is_file()
