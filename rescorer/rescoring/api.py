"""``rescore_batch``: rescore a ``LatticeBatch`` in-process, as ``fprescore rescore`` does.

For callers that already hold lattices (an icefall ``decode.py``, scripts,
benchmarks). It runs the same work unit as the command (``session.run_unit``)
and returns the results instead of writing files.
"""
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from rescorer.data.vocab import Vocabulary
from rescorer.errors import RescorerError
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.symbols import SymbolTable
from rescorer.ngram.model import NgramLM
from rescorer.outputs.text import Hypothesis
from rescorer.rescoring.collect import ResultCollector
from rescorer.rescoring.combine import Scales
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.context import RescoreContext
from rescorer.rescoring.report import RescoreReport
from rescorer.rescoring.session import history_window, run_unit
from rescorer.threads import single_threaded


@single_threaded
def rescore_batch(
    batch: LatticeBatch,
    model: torch.nn.Module,
    vocabulary: Vocabulary,
    symbols: SymbolTable,
    scales: Optional[Scales] = None,
    nbest: int = 1,
    beam: Optional[float] = None,
    max_arcs: int = 500_000,
    oov_penalty: float = 0.0,
    mode: str = "lattice",
    history_approx: Optional[int] = None,
    lowercase: bool = False,
    chunk_rows: int = 256,
    ngram: Optional[NgramLM] = None,
    ngram_source: str = "lattice",
) -> Tuple[Dict[str, List[Hypothesis]], Dict[str, RescorerError]]:
    """Rescore every lattice of ``batch`` with a fixed-point LM.

    Args:
      batch:
        U lattices with unique utterance ids, ``[utt][state][arc]``
        (e.g. ``LatticeBatch.from_k2_dict(fsas.as_dict())``).
      model:
        A ``FixedPointLM`` in eval mode (``rescorer.model.checkpoint.load_model``).
      vocabulary:
        Its ``Vocabulary``.
      symbols:
        The word table of the batch's word ids.
      scales / nbest / beam / max_arcs / oov_penalty / mode / history_approx / lowercase / chunk_rows:
        As the ``fprescore rescore`` options (``RescoreConfig``); ``beam=None``
        keeps every arc.
      ngram / ngram_source:
        An ARPA model (``rescorer.ngram.cache.load_ngram``) and its role, as
        ``--ngram-lm`` / ``--ngram-source``; ``scales.arpa`` and
        ``scales.interpolation`` are ``--arpa-scale`` / ``--interpolate``.

    Returns:
      ``(hypotheses, failures)``: utterance id -> its ranked ``Hypothesis`` list
      (the rows of ``nbest.jsonl``; the first is the 1-best of ``onebest.txt``),
      in batch order, and utterance id -> the error of each lattice that failed.

    Raises:
      ConfigError: bad options.
    """
    config = RescoreConfig(lattices=[Path("<in memory>")], model=Path("<in memory>"), out="-",
                           scales=scales or Scales(), nbest=nbest, beam=beam, max_arcs=max_arcs,
                           oov_penalty=oov_penalty, mode=mode, history_approx=history_approx,
                           lowercase=lowercase, chunk_rows=chunk_rows, ngram_source=ngram_source,
                           ngram_lm=None if ngram is None else Path("<in memory>"))
    context = RescoreContext(model, vocabulary, history_window(model.history_window, config), symbols,
                             None, lowercase, ngram)
    report, collector = RescoreReport(), ResultCollector(config, None)
    run_unit(batch, [None] * batch.num_utts, context, config, report, collector, None)
    hypotheses = {utt: collector.results[utt].hypotheses for utt in batch.utt_ids if utt in report.results}
    return hypotheses, {failure.utt_id: failure.error for failure in report.failures}
