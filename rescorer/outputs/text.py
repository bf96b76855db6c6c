"""Text outputs of rescoring: Kaldi ``text`` files and ``nbest.jsonl``.

``onebest.txt`` has one line per utterance, ``uttid w1 w2 ...`` (lattice
words, never LM tokens), sorted by utterance id as Kaldi expects.
``nbest.jsonl`` has one JSON object per hypothesis::

    {"uttid": "dev-0001", "rank": 1, "words": ["a", "b"],
     "am": -120.5, "ngram": -14.2, "nnlm": -9.8, "total": -131.1}

where ``total`` is the combined score the hypotheses are ranked by (see
``rescorer.rescoring.combine``). With ``--decode mbr`` each utterance also
gets one ``Consensus`` line, rank 0 so that it sorts first::

    {"uttid": "dev-0001", "rank": 0, "decode": "mbr", "words": ["a", "b"],
     "confidences": [0.93, 0.61], "times": [[0.12, 0.4], [0.4, 0.71]] | null,
     "bayes_risk": 0.52, "mbr_scale": 0.105}

(no am/ngram/nnlm/total: the consensus need not be a lattice path).
"""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, TextIO, Tuple, Union

from rescorer.errors import InputFormatError
from rescorer.atomic import atomic_write_text


@dataclass(frozen=True)
class Hypothesis:
    """One scored word sequence of an utterance.

    Attributes:
      uttid:
        Utterance id.
      rank:
        1 for the best hypothesis, then 2, 3, ...
      words:
        Lattice words of the hypothesis, fillers and epsilons removed.
      am:
        Unscaled acoustic score (sum over the path's arcs).
      ngram:
        Unscaled old n-gram score (sum over the path's arcs).
      nnlm:
        Neural LM log-probability of the word sequence, end of sentence
        included.
      total:
        The combined score: scales, word penalty and OOV penalty applied.
      arpa:
        The ``--ngram-lm`` ARPA n-gram's natural-log probability of the word
        sequence, end of sentence included (None without one; then not written).
    """

    uttid: str
    rank: int
    words: List[str]
    am: float
    ngram: float
    nnlm: float
    total: float
    arpa: Optional[float] = None

    def to_json(self) -> str:
        """One line of ``nbest.jsonl`` (no trailing newline)."""
        return json.dumps(
            {
                "uttid": self.uttid,
                "rank": self.rank,
                "words": list(self.words),
                "am": self.am,
                "ngram": self.ngram,
                "nnlm": self.nnlm,
                **({} if self.arpa is None else {"arpa": self.arpa}),
                "total": self.total,
            },
            ensure_ascii=False,
        )


@dataclass(frozen=True)
class Consensus:
    """The MBR consensus of an utterance (``--decode mbr``), one ``nbest.jsonl`` line.

    Attributes:
      uttid:
        Utterance id.
      words:
        The consensus words (Xu et al.'s confusion-network decoding).
      confidences:
        Each word's posterior in its bin, as many as ``words``.
      times:
        (start, end) seconds of each word, or None when the lattice has no times.
      bayes_risk:
        The expected edit distance of ``words`` to the lattice's paths.
      mbr_scale:
        The posterior scale used.
      times_note:
        Why ``times`` is None when the lattice's format has times (not written).
    """

    uttid: str
    words: List[str]
    confidences: List[float]
    times: Optional[List[Tuple[float, float]]]
    bayes_risk: float
    mbr_scale: float
    times_note: Optional[str] = None

    @property
    def rank(self) -> int:
        """0: sorts before the n-best's ranks 1, 2, ..."""
        return 0

    def to_json(self) -> str:
        """One line of ``nbest.jsonl`` (no trailing newline)."""
        return json.dumps(
            {"uttid": self.uttid, "rank": 0, "decode": "mbr", "words": list(self.words),
             "confidences": list(self.confidences),
             "times": None if self.times is None else [list(span) for span in self.times],
             "bayes_risk": self.bayes_risk, "mbr_scale": self.mbr_scale},
            ensure_ascii=False,
        )


def format_kaldi_text(transcripts: Dict[str, Sequence[str]]) -> str:
    """Kaldi ``text`` lines ``uttid w1 w2 ...``, sorted by utterance id.

    An empty word sequence gives the line ``uttid`` alone, as Kaldi writes it.
    """
    lines = []
    for uttid in sorted(transcripts):
        lines.append(" ".join([uttid, *transcripts[uttid]]) + "\n")
    return "".join(lines)


def write_kaldi_text(path: Union[str, Path], transcripts: Dict[str, Sequence[str]]) -> None:
    """Write ``transcripts`` as a Kaldi ``text`` file atomically."""
    atomic_write_text(path, format_kaldi_text(transcripts))


def print_kaldi_text(stream: TextIO, transcripts: Dict[str, Sequence[str]]) -> None:
    """Write ``transcripts`` as Kaldi ``text`` lines to an open stream (stdout)."""
    stream.write(format_kaldi_text(transcripts))
    stream.flush()


def write_nbest_jsonl(path: Union[str, Path], hypotheses: Iterable[Union[Hypothesis, Consensus]]) -> None:
    """Write hypotheses (and consensus lines) to ``nbest.jsonl`` atomically, sorted by (uttid, rank)."""
    ordered = sorted(hypotheses, key=lambda hypothesis: (hypothesis.uttid, hypothesis.rank))
    atomic_write_text(path, "".join(hypothesis.to_json() + "\n" for hypothesis in ordered))


def read_transcripts(path: Union[str, Path]) -> Dict[str, List[str]]:
    """Read a Kaldi ``text`` file: ``uttid w1 w2 ...`` per line.

    Blank lines are skipped; a line with an id alone is an empty transcript.

    Raises:
      InputFormatError: the file is missing, not UTF-8, or repeats an id
        (the message names the file and line).
    """
    path = Path(path)
    transcripts: Dict[str, List[str]] = {}
    try:
        handle = path.open(encoding="utf-8")
    except OSError as error:
        raise InputFormatError(f"cannot read Kaldi text ({error.strerror})", path=path) from error
    number = 0
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                fields = line.split()
                if not fields:
                    continue
                if fields[0] in transcripts:
                    raise InputFormatError(
                        f"utterance id {fields[0]!r} appears twice", path=path, where=f"line {number}"
                    )
                transcripts[fields[0]] = fields[1:]
        except UnicodeDecodeError as error:
            raise InputFormatError(
                f"not UTF-8 text ({error.reason})", path=path, where=f"line {number + 1}"
            ) from error
    return transcripts
