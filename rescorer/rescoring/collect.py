"""Gathering per-utterance results, the ``--grid`` choice, WER rows and outputs.

Without ``--grid`` each utterance's hypotheses are computed at once and the
rescored material is dropped. With ``--grid`` the 1-best at every LM scale is
kept, plus the rescored material, so that the n-best can be searched at the
winning scale at the end (the LM is never run twice).
"""
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from torch import Tensor

from rescorer.formats.k2_pt import write_k2
from rescorer.lattice.fsavec import Lattice
from rescorer.outputs.plots import plot_wer_grid
from rescorer.outputs.text import Hypothesis, print_kaldi_text, write_kaldi_text, write_nbest_jsonl
from rescorer.outputs.wer import WerStats, compute_wer
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.report import RescoreReport
from rescorer.rescoring.search import Rescored


class ResultCollector:
    """Per-utterance results of a run, finished into outputs and WER rows.

    Args:
      config:
        The run's settings (scales, grid, n-best size, outputs).
      references:
        Utterance id -> reference words, or None.
    """

    def __init__(self, config: RescoreConfig, references: Optional[Dict[str, List[str]]]) -> None:
        self.config = config
        self.references = references
        self.first_pass: Dict[str, List[str]] = {}
        self.oracle: Dict[str, Tuple[int, int]] = {}  # utt -> (errors, reference words)
        self.pruned_oracle: Dict[str, Tuple[int, int]] = {}
        self.grid_words: Dict[float, Dict[str, List[str]]] = {
            scale: {} for scale in (config.grid or [])
        }
        self.rescored: Dict[str, Rescored] = {}
        self.hypotheses: Dict[str, List[Hypothesis]] = {}
        self.lattices: List[Tuple[Lattice, Tensor]] = []

    def add(self, rescored: Rescored, first_pass: Optional[List[str]] = None,
            oracle: Optional[Tuple[int, int]] = None,
            pruned_oracle: Optional[Tuple[int, int]] = None) -> None:
        """Record one rescored utterance (searching now unless a grid is swept).

        ``oracle`` and ``pruned_oracle`` are (errors, reference words) of the
        lattice as read and after pruning.
        """
        utt_id = rescored.utt_id
        if first_pass is not None:
            self.first_pass[utt_id] = first_pass
        if oracle is not None:
            self.oracle[utt_id] = oracle
        if pruned_oracle is not None:
            self.pruned_oracle[utt_id] = pruned_oracle
        if self.config.grid is None:
            self.hypotheses[utt_id] = rescored.hypotheses(self.config.scales, self.config.nbest)
            return
        for scale, words in self.grid_words.items():
            words[utt_id] = rescored.onebest_words(self.config.scales.with_lm(scale))
        self.rescored[utt_id] = rescored

    def merge(self, other: "ResultCollector", utt_id: str) -> None:
        """Take utterance ``utt_id``'s results from another collector (a worker's)."""
        for mine, theirs in ((self.first_pass, other.first_pass), (self.oracle, other.oracle),
                             (self.pruned_oracle, other.pruned_oracle),
                             (self.rescored, other.rescored), (self.hypotheses, other.hypotheses)):
            if utt_id in theirs:
                mine[utt_id] = theirs[utt_id]
        for scale, words in other.grid_words.items():
            if utt_id in words:
                self.grid_words[scale][utt_id] = words[utt_id]
        self.lattices.extend(pair for pair in other.lattices if pair[0].utt_id == utt_id)

    def add_lattice(self, lattice: Lattice, nnlm_scores: Tensor) -> None:
        """Keep an expanded lattice and its per-arc LM scores for ``lattices.pt``."""
        self.lattices.append((lattice, nnlm_scores))

    def finish(self, report: RescoreReport) -> None:
        """Pick the grid scale, compute WER rows, write every output."""
        scales = self.config.scales
        if self.config.grid is not None:
            report.grid = [
                (scale, compute_wer(self.references, words, self.config.ignore_case))
                for scale, words in self.grid_words.items()
            ]
            best = min(report.grid, key=lambda row: (row[1].errors, row[0]))[0]
            scales = scales.with_lm(best)
            self.hypotheses = {
                utt_id: rescored.hypotheses(scales, self.config.nbest)
                for utt_id, rescored in self.rescored.items()
            }
        report.best_scale = scales.lm
        onebest = {utt_id: hyps[0].words for utt_id, hyps in self.hypotheses.items() if hyps}
        if self.references is not None:
            report.wer_rows = self._wer_rows(onebest, scales.lm)
        if self.config.to_stdout:
            print_kaldi_text(sys.stdout, onebest)
            return
        self._write(report, onebest)

    def _wer_rows(self, onebest: Dict[str, List[str]], lm_scale: float) -> List[Tuple[str, WerStats]]:
        """First pass, lattice oracle and rescored WER (over the same utterances)."""
        references = {utt: words for utt, words in self.references.items() if utt in onebest}
        rows = []
        if self.first_pass:
            rows.append(("first pass 1-best",
                         compute_wer(references, self.first_pass, self.config.ignore_case)))
        for label, oracle in (("lattice oracle", self.oracle),
                              (f"pruned lattice oracle (beam {self.config.beam})", self.pruned_oracle)):
            if oracle:
                errors = sum(errors for errors, _ in oracle.values())
                words = sum(count for _, count in oracle.values())
                rows.append((label, WerStats(errors, 0, 0, 0, words, len(oracle))))
        label = f"rescored ({self.config.mode}, lm_scale={lm_scale:g})"
        rows.append((label, compute_wer(references, onebest, self.config.ignore_case)))
        return rows

    def _write(self, report: RescoreReport, onebest: Dict[str, List[str]]) -> None:
        """Write onebest.txt, nbest.jsonl and the optional lattices and plot."""
        out = Path(self.config.out)
        write_kaldi_text(out / "onebest.txt", onebest)
        write_nbest_jsonl(out / "nbest.jsonl",
                          [hyp for hyps in self.hypotheses.values() for hyp in hyps])
        report.outputs += [out / "onebest.txt", out / "nbest.jsonl"]
        if self.config.write_lattices:
            write_k2(out / "lattices.pt", [lattice for lattice, _ in self.lattices],
                     extra_scores={"nnlm_scores": [scores for _, scores in self.lattices]})
            report.outputs.append(out / "lattices.pt")
        self._write_kaldi(report)
        if report.grid and plot_wer_grid(out / "wer_grid.png", [s for s, _ in report.grid],
                                         [stats.wer for _, stats in report.grid], report.best_scale):
            report.outputs.append(out / "wer_grid.png")

    def _write_kaldi(self, report: RescoreReport) -> None:
        """The Kaldi outputs (``--kaldi-lattices``, ``--kaldi-nbest``), at the chosen scale."""
        from rescorer.formats.kaldi_outputs import write_kaldi_lattices, write_kaldi_nbest

        scales = self.config.scales.with_lm(report.best_scale)
        if self.config.kaldi_lattices is not None:
            write_kaldi_lattices(self.config.kaldi_lattices, [lat for lat, _ in self.lattices],
                                 [nnlm for _, nnlm in self.lattices], scales)
            report.outputs.append(Path(self.config.kaldi_lattices))
        if self.config.kaldi_nbest:
            hypotheses = [hyp for hyps in self.hypotheses.values() for hyp in hyps]
            report.outputs += write_kaldi_nbest(self.config.out, hypotheses, scales.am)
