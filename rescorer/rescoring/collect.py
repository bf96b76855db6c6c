"""Gathering per-utterance results, the ``--grid`` choice, WER rows and outputs.

Without ``--grid`` each utterance's hypotheses are computed at once and the
rescored material is dropped. With ``--grid`` (``rescorer.rescoring.grid``) the
1-best at every grid point is kept (lattice mode: one batched Viterbi per
point over the work unit, ``ScoredBatch``), plus the rescored material, so
that the n-best can be searched at the winning point at the end (the LM is
never run twice). Under ``--shard`` the winning point is only known after
``fprescore merge``, so each utterance's n-best is searched at every grid
point at once and kept instead.

With ``--decode mbr`` the consensus is computed with the hypotheses (at the
configured scales) or, under ``--grid``, at the winning scale, which the
Viterbi 1-best picks (MBR at every grid point would cost a decoding per
point; under ``--shard`` that cost is paid, as for the n-best). It is the
1-best of ``onebest.txt`` and of the rescored WER row, gets a line in
``nbest.jsonl``, and its words with times go to ``onebest.ctm``.

``finish`` turns the results into outputs. ``fprescore merge`` fills a
collector from the shards' ``utterances.jsonl`` and calls the same
``finish``, which is why a merged run equals a single run byte for byte.
"""
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from rescorer.formats.k2_pt import write_k2
from rescorer.lattice.fsavec import Lattice
from rescorer.outputs.ctm import write_ctm
from rescorer.outputs.plots import plot_wer_grid, plot_wer_heat_map
from rescorer.outputs.text import (Consensus, Hypothesis, print_kaldi_text, write_kaldi_text,
                                   write_nbest_jsonl)
from rescorer.outputs.wer import WerStats, compute_wer
from rescorer.rescoring.expand import RETRY_BEAM
from rescorer.rescoring.combine import Scales
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.grid import Point, best_point, heat_map
from rescorer.rescoring.report import RescoreReport
from rescorer.rescoring.search import Rescored
from rescorer.rescoring.timing import stage

Oracle = Tuple[int, int]  # (errors, reference words)


@dataclass
class UtteranceResult:
    """Everything the outputs need of one rescored utterance.

    Attributes:
      utt_id:
        The utterance.
      first_pass:
        First-pass 1-best words (when references are given).
      oracle / pruned_oracle:
        (errors, reference words) of the lattice as read / after pruning.
      hypotheses:
        The n-best at the configured scales (no ``--grid``).
      grid_onebest:
        Grid point -> 1-best words, for each ``--grid`` point.
      grid_hypotheses:
        Grid point -> n-best, for each ``--grid`` point (``--shard``, or read
        back by ``fprescore merge``).
      rescored:
        The rescored material, kept to search the n-best at the winning grid
        point (``--grid`` without ``--shard``).
      consensus:
        The MBR consensus at the configured scales (``--decode mbr``, no ``--grid``).
      grid_consensus:
        Grid point -> MBR consensus, for each ``--grid`` point (``--decode mbr``
        with ``--shard``, or read back by ``fprescore merge``).
    """

    utt_id: str
    first_pass: Optional[List[str]] = None
    oracle: Optional[Oracle] = None
    pruned_oracle: Optional[Oracle] = None
    hypotheses: Optional[List[Hypothesis]] = None
    grid_onebest: Dict[Point, List[str]] = field(default_factory=dict)
    grid_hypotheses: Optional[Dict[Point, List[Hypothesis]]] = None
    rescored: Optional[Rescored] = None
    consensus: Optional[Consensus] = None
    grid_consensus: Optional[Dict[Point, Consensus]] = None


class ResultCollector:
    """Per-utterance results of a run, finished into outputs and WER rows.

    Args:
      config:
        The run's settings (scales, grid, n-best size, outputs, shard).
      references:
        Utterance id -> reference words, or None.
    """

    def __init__(self, config: RescoreConfig, references: Optional[Dict[str, List[str]]]) -> None:
        self.config = config
        self.references = references
        self.results: Dict[str, UtteranceResult] = {}
        self.lattices: List[Tuple[Lattice, Tensor]] = []
        grid = config.grid
        self.points: List[Tuple[Point, Scales]] = [] if grid is None else [
            (point, grid.scales_at(config.scales, point)) for point in grid.points()]

    def add(self, rescored: Rescored, first_pass: Optional[List[str]] = None,
            oracle: Optional[Oracle] = None, pruned_oracle: Optional[Oracle] = None) -> None:
        """Record one rescored utterance (searching now unless a grid is swept in-process)."""
        config = self.config
        result = UtteranceResult(rescored.utt_id, first_pass, oracle, pruned_oracle)
        if config.grid is None:
            result.hypotheses = rescored.hypotheses(config.scales, config.nbest)
            if config.decode == "mbr":
                result.consensus = rescored.consensus(config.scales, config.mbr_scale)
        else:
            for point, scales in self.points:
                result.grid_onebest[point] = rescored.onebest_words(scales)
            if config.shard is None:
                result.rescored = rescored
            else:
                result.grid_hypotheses = {point: rescored.hypotheses(scales, config.nbest)
                                          for point, scales in self.points}
                if config.decode == "mbr":  # the winning point is only known after the merge
                    result.grid_consensus = {point: rescored.consensus(scales, config.mbr_scale)
                                             for point, scales in self.points}
        self.results[result.utt_id] = result

    def merge(self, other: "ResultCollector", utt_id: str) -> None:
        """Take utterance ``utt_id``'s results from another collector (a worker's)."""
        self.results[utt_id] = other.results[utt_id]
        self.lattices.extend(pair for pair in other.lattices if pair[0].utt_id == utt_id)

    def add_lattice(self, lattice: Lattice, nnlm_scores: Tensor) -> None:
        """Keep an expanded lattice and its per-arc LM scores for ``lattices.pt``."""
        self.lattices.append((lattice, nnlm_scores))

    def hypotheses_at(self, point: Optional[Point]) -> Dict[str, List[Hypothesis]]:
        """Utterance id -> n-best, at the configured scales (None) or at a grid point."""
        if point is None:
            return {utt: result.hypotheses for utt, result in self.results.items()}
        scales = self.config.grid.scales_at(self.config.scales, point)
        return {
            utt: (result.grid_hypotheses[point] if result.grid_hypotheses is not None
                  else result.rescored.hypotheses(scales, self.config.nbest))
            for utt, result in self.results.items()
        }

    def consensus_at(self, point: Optional[Point]) -> Dict[str, Consensus]:
        """Utterance id -> MBR consensus, at the configured scales (None) or at a grid point."""
        scales = self.config.scales if point is None else \
            self.config.grid.scales_at(self.config.scales, point)
        with stage("search"):
            return {utt: _consensus_of(result, point, scales, self.config.mbr_scale)
                    for utt, result in self.results.items()}

    def finish(self, report: RescoreReport) -> Dict[str, List[Hypothesis]]:
        """Pick the grid point, compute WER rows, write onebest/nbest/lattices/plot.

        Returns:
          Utterance id -> the written n-best.
        """
        grid = self.config.grid
        with stage("search"):  # the grid choice, and the n-best at the best point
            if grid is not None:
                report.grid = [
                    (point, compute_wer(self.references,
                                        {utt: r.grid_onebest[point] for utt, r in self.results.items()},
                                        self.config.ignore_case))
                    for point, _ in self.points
                ]
                report.grid_names = grid.names
                report.best_point = best_point([(point, stats.errors) for point, stats in report.grid])
            report.best_scales = self.config.scales if grid is None else \
                grid.scales_at(self.config.scales, report.best_point)
            hypotheses = self.hypotheses_at(report.best_point)
        consensus = self.consensus_at(report.best_point) if self.config.decode == "mbr" else {}
        onebest = {utt_id: hyps[0].words for utt_id, hyps in hypotheses.items() if hyps}
        onebest.update({utt_id: found.words for utt_id, found in consensus.items()})
        if self.references is not None:
            report.wer_rows = self._wer_rows(onebest, report,
                                             [stats.tightened for stats in report.results.values()])
        with stage("write"):
            if self.config.to_stdout:
                print_kaldi_text(sys.stdout, onebest)
            else:
                self._write(report, onebest, hypotheses, consensus)
        return hypotheses

    def _wer_rows(self, onebest: Dict[str, List[str]], report: RescoreReport,
                  tightened: List[int]) -> List[Tuple[str, WerStats]]:
        """First pass, lattice oracle and rescored WER (over the same utterances, the rescored
        row at ``report``'s best scales); ``tightened`` holds each rescored utterance's beam
        tightenings (``UtteranceStats.tightened``)."""
        references = {utt: words for utt, words in self.references.items() if utt in onebest}
        first_pass = {utt: r.first_pass for utt, r in self.results.items() if r.first_pass is not None}
        rows = []
        if first_pass:
            rows.append(("first pass 1-best",
                         compute_wer(references, first_pass, self.config.ignore_case)))
        oracles = {"lattice oracle": [r.oracle for r in self.results.values() if r.oracle],
                   f"pruned lattice oracle ({_beam_label(self.config.beam, tightened)})":
                       [r.pruned_oracle for r in self.results.values() if r.pruned_oracle]}
        for label, oracle in oracles.items():
            if oracle:
                errors = sum(errors for errors, _ in oracle)
                words = sum(count for _, count in oracle)
                rows.append((label, WerStats(errors, 0, 0, 0, words, len(oracle))))
        others = "" if report.best_point is None else "".join(
            f", {name}={value:g}" for name, value in zip(report.grid_names, report.best_point)
            if name != "lm-scale")
        decode = f", mbr scale {self.config.mbr_scale:g}" if self.config.decode == "mbr" else ""
        label = f"rescored ({self.config.mode}{decode}, lm_scale={report.best_scales.lm:g}{others})"
        rows.append((label, compute_wer(references, onebest, self.config.ignore_case)))
        return rows

    def _write(self, report: RescoreReport, onebest: Dict[str, List[str]],
               hypotheses: Dict[str, List[Hypothesis]], consensus: Dict[str, Consensus]) -> None:
        """Write onebest.txt, nbest.jsonl, the CTM and the optional lattices and plot."""
        out = Path(self.config.out)
        write_kaldi_text(out / "onebest.txt", onebest)
        write_nbest_jsonl(out / "nbest.jsonl", [hyp for hyps in hypotheses.values() for hyp in hyps]
                          + list(consensus.values()))
        report.outputs += [out / "onebest.txt", out / "nbest.jsonl"]
        if consensus:
            _write_ctm(out / "onebest.ctm", consensus, report)
        if self.config.write_lattices:
            write_k2(out / "lattices.pt", [lattice for lattice, _ in self.lattices],
                     extra_scores={"nnlm_scores": [scores for _, scores in self.lattices]})
            report.outputs.append(out / "lattices.pt")
        self._write_kaldi(report, hypotheses)
        if report.grid and self._plot(out / "wer_grid.png", report):
            report.outputs.append(out / "wer_grid.png")

    def _plot(self, path: Path, report: RescoreReport) -> bool:
        """``wer_grid.png``: a line plot for a 1-D grid, else a heat map (``grid.heat_map``)."""
        grid = self.config.grid
        wers = {point: stats.wer for point, stats in report.grid}
        if len(grid.axes) > 1:
            return plot_wer_heat_map(path, heat_map(grid, wers, report.best_point))
        pairs = sorted(wers.items())
        return plot_wer_grid(path, [point[0] for point, _ in pairs], [wer for _, wer in pairs],
                             report.best_point[0], x_label=grid.names[0])

    def _write_kaldi(self, report: RescoreReport, hypotheses: Dict[str, List[Hypothesis]]) -> None:
        """The Kaldi outputs (``--kaldi-lattices``, ``--kaldi-nbest``), at the chosen scale."""
        from rescorer.formats.kaldi_outputs import write_kaldi_lattices, write_kaldi_nbest

        scales = report.best_scales
        if self.config.kaldi_lattices is not None:
            write_kaldi_lattices(self.config.kaldi_lattices, [lat for lat, _ in self.lattices],
                                 [nnlm for _, nnlm in self.lattices], scales)
            report.outputs.append(Path(self.config.kaldi_lattices))
        if self.config.kaldi_nbest:
            rows = [hyp for hyps in hypotheses.values() for hyp in hyps]
            report.outputs += write_kaldi_nbest(self.config.out, rows, scales.am)


def _consensus_of(result: UtteranceResult, point: Optional[Point], scales: Scales,
                  mbr_scale: float) -> Consensus:
    """An utterance's consensus: kept (no grid), kept per grid point (shards), or decoded now."""
    if point is None:
        return result.consensus
    if result.grid_consensus is not None:
        return result.grid_consensus[point]
    return result.rescored.consensus(scales, mbr_scale)


def _write_ctm(path: Path, consensus: Dict[str, Consensus], report: RescoreReport) -> None:
    """``onebest.ctm`` for the utterances with times; a warning per reason for those without."""
    timed = {utt: (found.words, torch.tensor(found.times, dtype=torch.float64).reshape(-1, 2),
                   torch.tensor(found.confidences, dtype=torch.float64))
             for utt, found in consensus.items() if found.times is not None}
    reasons: Dict[str, List[str]] = {}
    for utt in sorted(consensus):
        if consensus[utt].times is None:
            reasons.setdefault(consensus[utt].times_note or "its lattice format has no times", []).append(utt)
    if not timed:
        report.notes.append("no onebest.ctm: no lattice has times (SLF t=, Kaldi transition ids, "
                            "frame-synchronous k2)")
        return
    for reason, utts in reasons.items():
        shown = ", ".join(utts[:5]) + (", ..." if len(utts) > 5 else "")
        report.warnings.append(f"onebest.ctm has no lines for {len(utts)} utterance(s) ({shown}): {reason}")
    write_ctm(path, timed)
    report.outputs.append(path)


def _beam_label(beam: Optional[float], tightened: List[int]) -> str:
    """The beams really used: the one asked for and, when --max-arcs forced tighter ones
    (``rescoring.expand``: RETRY_BEAM then halvings without a beam), the tightest."""
    text = "beam none" if beam is None else f"beam {beam:g}"
    most = max(tightened, default=0)
    if most == 0:
        return text
    lowest = RETRY_BEAM / 2 ** (most - 1) if beam is None else beam / 2 ** most
    count = sum(1 for times in tightened if times)
    return f"{text}; {count} utterance(s) tightened to fit --max-arcs, down to {lowest:g}"
