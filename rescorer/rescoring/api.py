"""``rescore_batch``: rescore a ``LatticeBatch`` in-process, as ``fprescore rescore`` does.

For callers that already hold lattices (an icefall ``decode.py``, scripts,
benchmarks). It runs the same work unit as the command (``session.run_unit``)
and returns the results instead of writing files.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch

from rescorer.data.vocab import Vocabulary
from rescorer.devices import resolve_device
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.symbols import SymbolTable
from rescorer.outputs.text import Hypothesis
from rescorer.paths import PathLike
from rescorer.rescoring.collect import ResultCollector
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.context import RescoreContext
from rescorer.rescoring.report import Failure, RescoreReport, UtteranceStats
from rescorer.rescoring.session import history_window, run_unit
from rescorer.training.checkpoint import load_model


@dataclass
class BatchResult:
    """What ``rescore_batch`` found.

    Attributes:
      hypotheses:
        Utterance id -> its n-best (``Hypothesis``: words, am, ngram, nnlm,
        total), best first, for every rescored utterance.
      failures:
        The utterances that could not be rescored (``Failure``: utt_id, message).
      stats:
        Utterance id -> sizes along the pipeline (arcs, pruned and expanded
        arcs, LM histories and queries, words, OOV words).
    """

    hypotheses: Dict[str, List[Hypothesis]]
    failures: List[Failure]
    stats: Dict[str, UtteranceStats]

    @property
    def onebest(self) -> Dict[str, List[str]]:
        """Utterance id -> the best word sequence."""
        return {utt: hyps[0].words for utt, hyps in self.hypotheses.items() if hyps}


def rescore_batch(
    batch: LatticeBatch,
    model: Union[PathLike, Tuple[torch.nn.Module, Vocabulary]],
    words: Union[PathLike, SymbolTable],
    device: str = "auto",
    **options: Any,
) -> BatchResult:
    """Rescore every lattice of ``batch`` with a fixed-point LM.

    Args:
      batch:
        U lattices with unique utterance ids, ``[utt][state][arc]``.
      model:
        A checkpoint written by ``fprescore train``, or an already loaded
        ``(model, vocabulary)`` pair (``rescorer.training.checkpoint.load_model``).
      words:
        The words.txt of the batch's word ids (path or ``SymbolTable``).
      device:
        Where to load a checkpoint: "auto", "cpu" or "cuda".
      options:
        ``RescoreConfig`` fields, as the command's options: ``scales``
        (``rescorer.rescoring.combine.Scales``), ``beam`` (None: no pruning),
        ``nbest``, ``oov_penalty``, ``max_arcs``, ``mode``, ``history_approx``,
        ``lowercase``, ``chunk_rows``, ``strict`` (raise the first failure).

    Returns:
      A ``BatchResult``; bad lattices are listed in ``failures``, not raised.

    Raises:
      RescorerError: bad options or checkpoint; the first failure under ``strict=True``.
    """
    options.setdefault("beam", 16.0)
    config = RescoreConfig(lattices=[Path("<batch>")], model=Path("<model>"), out="-", **options)
    if isinstance(model, tuple):
        lm, vocabulary = model
    else:
        lm, vocabulary = load_model(model, resolve_device(device))
    symbols = words if isinstance(words, SymbolTable) else SymbolTable.from_file(words)
    context = RescoreContext(lm, vocabulary, history_window(lm.history_window, config), symbols,
                             None, config.lowercase)
    report, collector = RescoreReport(), ResultCollector(config, None)
    paths: List[Optional[Path]] = [None] * batch.num_utts
    run_unit(batch, paths, context, config, report, collector, None)
    hypotheses = {utt: collector.results[utt].hypotheses for utt in batch.utt_ids if utt in report.results}
    return BatchResult(hypotheses, report.failures, report.results)
