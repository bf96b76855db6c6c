"""``summary.json``: a run's figures for scripts, so nobody scrapes tables.

Written atomically into ``--out`` by ``rescore`` (also when every utterance
failed) and by ``merge``. Every key except ``run`` describes the result and
is identical for equivalent runs (one process, ``--jobs``, ``--batch-size``,
``--shard`` + ``merge``); ``run`` describes how the run was executed::

    format, version     "fprescore-rescore-summary", 1
    options             the settings that shape the outputs (scales, beam, grid, inputs, ...)
    counts              lattices (read; this shard's), rescored, failed (utterances),
                        failed_files (files unreadable as a whole)
    sizes               arcs, pruned_arcs, expanded_arcs, expansion_factor
                        (expanded / pruned), histories, queries, tightened_utterances
    oov                 words, oov_words, rate, warn_above: lattice word occurrences
                        (each arc's words) the LM only knows as <unk>, over the rescored
                        utterances; a rate above warn_above prints a warning; with
                        --ngram-lm also arpa_oov_words, arpa_rate: those the ARPA maps to <unk>
    wer                 rows {system, wer, errors, insertions, deletions, substitutions,
                        ref_words, utterances, missing} (with references)
    grid                one row {point: {name: value, ...}, wer, errors, ...} per --grid
                        point, in grid order (rescorer.rescoring.grid)
    best_point          {name: value, ...} of the chosen grid point (null without --grid)
    best_lm_scale       the LM scale of the outputs
    failures            {file, utt, problem, message}, sorted by file, utterance, message
    warnings            the warning lines printed on stderr
    utterances          per utterance, sorted by id: {utt, the sizes above, words,
                        oov_words, oov_rate}
    run                 seconds {read, prune, expand, score, search, write, total}
                        (wall clock; null: not timed separately by this engine; stages are
                        summed over --jobs workers), cpu_seconds (the same stages' CPU
                        time of our processes only, robust to a loaded machine), jobs, batch_size,
                        threads, shard ("I/N" or null), files, lm_histories_run (distinct
                        histories per work unit, summed: depends on batching), notes,
                        merged_from (merge only)
"""
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional

from rescorer.atomic import atomic_write_text
from rescorer.errors import InputFormatError
from rescorer.outputs.wer import WerStats
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.report import OOV_WARN_RATE, RescoreReport
from rescorer.rescoring.timing import STAGES

SUMMARY = "summary.json"
FORMAT = "fprescore-rescore-summary"


def options_of(config: RescoreConfig) -> Dict[str, Any]:
    """The settings of ``config`` that shape the outputs (``merge`` checks shards agree)."""
    def text(value: Optional[Path]) -> Optional[str]:
        return None if value is None else str(value)

    return {
        "inputs": [str(path) for path in config.lattices], "model": str(config.model),
        "words": text(config.words), "refs": text(config.refs), "cuts": text(config.cuts),
        "mode": config.mode, "scales": asdict(config.scales), "oov_penalty": config.oov_penalty,
        "beam": config.beam, "max_arcs": config.max_arcs, "beam_tries": config.beam_tries,
        "nbest": config.nbest, "history_approx": config.history_approx, "grid": None if config.grid is None else config.grid.to_options(),
        "chunk_rows": config.chunk_rows,
        "ignore_case": config.ignore_case, "lowercase": config.lowercase,
        **({"decode": config.decode, "mbr_scale": config.mbr_scale, "frame_shift": config.frame_shift}
           if config.decode != "viterbi" else {}),
        **({} if config.ngram_lm is None else {"ngram_lm": str(config.ngram_lm),
                                               "ngram_source": config.ngram_source}),
    }


def _wer(stats: WerStats) -> Dict[str, Any]:
    return {"wer": stats.wer, "errors": stats.errors, "insertions": stats.insertions,
            "deletions": stats.deletions, "substitutions": stats.substitutions,
            "ref_words": stats.ref_words, "utterances": stats.utterances, "missing": stats.missing}


def _failures(report: RescoreReport) -> List[Dict[str, Any]]:
    rows = [{"file": None if f.path is None else str(f.path), "utt": f.utt_id,
             "problem": f.problem, "message": f.message} for f in report.failures]
    return sorted(rows, key=lambda row: (row["file"] or "", row["utt"] or "", row["message"]))


def build_summary(options: Dict[str, Any], report: RescoreReport, run: Dict[str, Any]) -> Dict[str, Any]:
    """The ``summary.json`` object of a finished run (``run``: its execution details)."""
    totals = report.totals()
    utterance_failures = sum(1 for failure in report.failures if failure.utt_id is not None)
    return {
        "format": FORMAT, "version": 1, "options": options,
        "counts": {"lattices": report.lattices_read, "rescored": len(report.results),
                   "failed": utterance_failures,
                   "failed_files": len(report.failures) - utterance_failures},
        "sizes": {"arcs": totals["arcs"], "pruned_arcs": totals["pruned_arcs"],
                  "expanded_arcs": totals["expanded_arcs"],
                  "expansion_factor": totals["expanded_arcs"] / max(totals["pruned_arcs"], 1),
                  "histories": totals["histories"], "queries": totals["queries"],
                  "tightened_utterances": sum(1 for s in report.results.values() if s.tightened)},
        "oov": {"words": totals["words"], "oov_words": totals["oov_words"],
                "rate": report.oov_rate, "warn_above": OOV_WARN_RATE,
                **({} if options.get("ngram_lm") is None else {
                    "arpa_oov_words": totals["arpa_oov_words"],
                    "arpa_rate": totals["arpa_oov_words"] / totals["words"] if totals["words"] else 0.0})},
        "wer": [{"system": label, **_wer(stats)} for label, stats in report.wer_rows],
        "grid": [{"point": dict(zip(report.grid_names, point)), **_wer(stats)}
                 for point, stats in report.grid],
        "best_point": None if report.best_point is None else dict(zip(report.grid_names, report.best_point)),
        "best_lm_scale": None if report.best_scales is None else report.best_scales.lm,
        "failures": _failures(report),
        "warnings": list(report.warnings),
        "utterances": [{"utt": utt, **asdict(report.results[utt]), "oov_rate": report.results[utt].oov_rate}
                       for utt in sorted(report.results)],
        "run": {"seconds": {**{name: report.timings.get(name) for name in STAGES},
                            "total": report.timings.total},
                "cpu_seconds": {name: report.timings.cpu(name) for name in STAGES}, **run,
                "lm_histories_run": report.unique_histories, "notes": list(report.notes)},
    }


def write_summary(out: Path, options: Dict[str, Any], report: RescoreReport,
                  run: Dict[str, Any]) -> Path:
    """Write ``out/summary.json`` atomically; returns its path."""
    path = out / SUMMARY
    text = json.dumps(build_summary(options, report, run), indent=1, ensure_ascii=False)
    atomic_write_text(path, text + "\n")
    return path


def run_details(config: RescoreConfig, report: RescoreReport) -> Dict[str, Any]:
    """The ``run`` entries of a ``rescore`` run."""
    shard = None if config.shard is None else f"{config.shard[0]}/{config.shard[1]}"
    return {"jobs": config.jobs, "batch_size": config.batch_size, "threads": config.threads,
            "shard": shard, "files": report.files}


def read_summary(folder: Path) -> Dict[str, Any]:
    """The ``summary.json`` of an output folder.

    Raises:
      InputFormatError: missing, not JSON, or not a rescoring summary.
    """
    path = folder / SUMMARY
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputFormatError(f"cannot read the run summary ({error}); expected an --out folder "
                               f"of `fprescore rescore`", path=path) from error
    if not isinstance(summary, dict) or summary.get("format") != FORMAT:
        raise InputFormatError(f"not a rescoring summary (expected format {FORMAT!r})", path=path)
    return summary
