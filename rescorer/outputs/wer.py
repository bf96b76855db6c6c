"""Word error rate with kaldialign, and reference transcripts.

References come from a Kaldi ``text`` file or a lhotse CutSet (the text of a
cut's supervisions joined with spaces). Comparison is case-sensitive, as in
Kaldi's ``compute-wer``, unless ``ignore_case`` is set (both sides are then
case-folded).

WER is computed over the utterances that have both a reference and a
hypothesis; ``WerStats.missing`` counts references without a hypothesis
(failed utterances), which are left out rather than counted as deletions.
"""
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import kaldialign

from rescorer.errors import ConfigError, InputFormatError
from rescorer.outputs.text import read_transcripts


@dataclass(frozen=True)
class WerStats:
    """Error counts of a set of hypotheses against references.

    Attributes:
      errors:
        Insertions + deletions + substitutions.
      insertions / deletions / substitutions:
        The three kinds of errors.
      ref_words:
        Number of reference words of the scored utterances.
      utterances:
        Number of utterances scored.
      missing:
        References that had no hypothesis (not scored).
    """

    errors: int
    insertions: int
    deletions: int
    substitutions: int
    ref_words: int
    utterances: int
    missing: int = 0

    @property
    def wer(self) -> float:
        """Errors / reference words in percent (0 when there are no words)."""
        return 100.0 * self.errors / self.ref_words if self.ref_words else 0.0

    def describe(self) -> str:
        """``12.34% (416/3373)``, the usual Kaldi summary."""
        return f"{self.wer:.2f}% ({self.errors}/{self.ref_words})"


def utterance_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> Dict[str, int]:
    """Edit distance of one utterance: keys ``ins``, ``del``, ``sub``, ``total``."""
    result = kaldialign.edit_distance(list(reference), list(hypothesis))
    return {key: int(result[key]) for key in ("ins", "del", "sub", "total")}


def compute_wer(
    references: Dict[str, Sequence[str]],
    hypotheses: Dict[str, Sequence[str]],
    ignore_case: bool = False,
) -> WerStats:
    """WER of ``hypotheses`` against ``references`` over their common utterances.

    Args:
      references:
        Utterance id -> reference words.
      hypotheses:
        Utterance id -> hypothesis words; ids without a reference are ignored.
      ignore_case:
        Case-fold both sides before comparing.

    Returns:
      The summed error counts; ``missing`` counts references without hypothesis.
    """
    totals = {"ins": 0, "del": 0, "sub": 0, "total": 0}
    ref_words = 0
    utterances = 0
    for uttid, reference in references.items():
        if uttid not in hypotheses:
            continue
        hypothesis = hypotheses[uttid]
        if ignore_case:
            reference = [word.casefold() for word in reference]
            hypothesis = [word.casefold() for word in hypothesis]
        counts = utterance_errors(reference, hypothesis)
        for key in totals:
            totals[key] += counts[key]
        ref_words += len(reference)
        utterances += 1
    return WerStats(
        errors=totals["total"],
        insertions=totals["ins"],
        deletions=totals["del"],
        substitutions=totals["sub"],
        ref_words=ref_words,
        utterances=utterances,
        missing=len(references) - utterances,
    )


def read_cuts_text(path: Union[str, Path]) -> Dict[str, List[str]]:
    """References from a lhotse CutSet manifest: supervisions' text joined per cut id.

    Raises:
      InputFormatError: the manifest cannot be read, or a cut has no text.
    """
    from lhotse import CutSet  # Lazy: lhotse is slow to import.

    path = Path(path)
    try:
        cuts = CutSet.from_file(path)
        references = {}
        for cut in cuts:
            texts = [supervision.text for supervision in cut.supervisions]
            if any(text is None for text in texts):
                raise InputFormatError(
                    "a supervision has no text (expected text on every supervision)",
                    path=path,
                    utt_id=cut.id,
                )
            references[cut.id] = " ".join(texts).split()
    except (OSError, EOFError, ValueError, KeyError, TypeError, gzip.BadGzipFile) as error:
        if isinstance(error, json.JSONDecodeError):
            raise InputFormatError(f"not a lhotse manifest ({error.msg})", path=path) from error
        raise InputFormatError(f"cannot read lhotse cuts ({error})", path=path) from error
    return references


def load_references(
    refs: Optional[Union[str, Path]] = None, cuts: Optional[Union[str, Path]] = None
) -> Optional[Dict[str, List[str]]]:
    """Reference transcripts from ``--refs`` (Kaldi text) or ``--cuts`` (lhotse).

    Returns:
      Utterance id -> words, or None when neither is given.

    Raises:
      ConfigError: both are given.
    """
    if refs is not None and cuts is not None:
        raise ConfigError("give either --refs or --cuts, not both")
    if refs is not None:
        return read_transcripts(refs)
    if cuts is not None:
        return read_cuts_text(cuts)
    return None
