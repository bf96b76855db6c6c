"""CTM output (NIST time-marked conversation): one line per word with a confidence.

Line format, as Kaldi's ``lattice-to-ctm-conf`` writes it::

    UTTERANCE CHANNEL START DURATION WORD CONFIDENCE

with START and DURATION in seconds. Utterances are sorted by id.
"""
from typing import Dict, List, Sequence, Tuple

from torch import Tensor

from rescorer.atomic import atomic_write_text
from rescorer.paths import PathLike

CtmEntry = Tuple[Sequence[str], Tensor, Tensor]
"""(words, 2-D float (W, 2) start/end seconds, 1-D float (W,) confidences) of one utterance."""


def ctm_lines(utt_id: str, words: Sequence[str], times: Tensor, confidences: Tensor,
              channel: str = "1") -> List[str]:
    """The CTM lines of one utterance.

    Args:
      utt_id:
        The utterance id.
      words:
        The W words.
      times:
        2-D float tensor of shape (W, 2), start and end of each word in seconds.
      confidences:
        1-D float tensor of shape (W,), each word's posterior.
      channel:
        The channel field.

    Raises:
      ValueError: if the lengths differ.
    """
    if not len(words) == times.shape[0] == confidences.numel():
        raise ValueError(f"{utt_id}: {len(words)} words, {times.shape[0]} times and "
                         f"{confidences.numel()} confidences (expected equal counts)")
    return [f"{utt_id} {channel} {start:.3f} {max(end - start, 0.0):.3f} {word} {confidence:.4f}"
            for word, (start, end), confidence in zip(words, times.tolist(), confidences.tolist())]


def write_ctm(path: PathLike, utterances: Dict[str, CtmEntry]) -> None:
    """Write a CTM file atomically, utterances sorted by id."""
    lines = [line for utt_id in sorted(utterances) for line in ctm_lines(utt_id, *utterances[utt_id])]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
