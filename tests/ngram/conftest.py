"""Shared ARPA fixtures for the n-gram tests."""
from pathlib import Path

import pytest

SHARED_ARPA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "asr-dev-ptb3g" / "lm" / "ptbvalid-3g.arpa"

# A 4-gram LM written by hand; log10 values chosen to be exact in binary where
# it matters. "c a b" is a 3-gram whose prefix "c a" is not a 2-gram (a pruning
# hole). There is no <unk>, so the loader adds one with log10 P = -100.
TINY_ARPA = """\
This line before \\data\\ is a comment.
\\data\\
ngram 1=5
ngram 2=4
ngram 3=3
ngram 4=1

\\1-grams:
-99\t<s>\t-0.5
-1.0\t</s>
-0.5\ta\t-0.25
-0.75\tb\t-0.125
-1.5\tc

\\2-grams:
-0.25\t<s> a\t-0.5
-0.5\ta b\t-0.1
-0.3\tb </s>
-0.2\tb c

\\3-grams:
-0.1\t<s> a b
-0.05\ta b c
-0.4\tc a b

\\4-grams:
-0.01\t<s> a b c

\\end\\
"""


@pytest.fixture
def tiny_arpa(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.arpa"
    path.write_text(TINY_ARPA, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def shared_arpa() -> Path:
    if not SHARED_ARPA.is_file():
        pytest.skip(f"{SHARED_ARPA} is absent")
    return SHARED_ARPA
