"""recipes/common/lib.sh option parsing and the WER table helper."""
import subprocess

from tests.recipes.conftest import REPO, load_local

wer_table = load_local("wer_table")
LIB = REPO / "recipes" / "common" / "lib.sh"


def _parse(*args: str) -> subprocess.CompletedProcess:
    script = (f'source "{LIB}"; stage=0; stop_stage=6; num_utts=100; ci=false; text=a; '
              'usage=USAGE; parse_options "$@"; echo "$stage $stop_stage $num_utts $ci $text"; '
              'want_stage 3 && echo in || echo out')
    return subprocess.run(["bash", "-c", script, "run.sh", *args],
                          capture_output=True, text=True, check=False)


def test_parse_options_sets_values_and_flags():
    result = _parse("--stage", "4", "--num-utts", "7", "--ci", "--text", "x y")
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["4 6 7 true x y", "out"]
    assert _parse("--ci", "false", "--stop-stage", "3").stdout.splitlines() == \
        ["0 3 100 false a", "in"]


def test_parse_options_rejects_unknown_and_missing_values():
    unknown = _parse("--nmu-utts", "3")
    assert unknown.returncode == 2 and "unknown option --nmu-utts" in unknown.stderr
    missing = _parse("--stage")
    assert missing.returncode == 2 and "needs a value" in missing.stderr
    assert _parse("stray").returncode == 2
    assert _parse("--help").stdout == "USAGE\n"


def test_word_error_rate_counts_missing_utterances_as_deletions():
    references = {"u1": "a b c d".split(), "u2": "e f".split()}
    hypotheses = {"u1": "a x c d e".split()}  # 1 substitution + 1 insertion; u2 missing
    assert wer_table.word_error_rate(references, hypotheses) == (4, 6)
