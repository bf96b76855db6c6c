"""``fprescore merge``: join ``--shard I/N`` outputs into the outputs of one run.

Each shard folder holds ``summary.json`` (options, failures, counts) and
``utterances.jsonl`` (per utterance: sizes, first-pass words, oracle errors
and the n-best, and with ``--decode mbr`` the consensus, at every ``--grid``
point under a grid). The merge checks
that the folders are shards 1..N of one N, each once, run with the same
options, then fills one ``ResultCollector`` and calls the same ``finish`` as
``rescore``: grid point chosen over all shards, WER rows, ``onebest.txt``,
``nbest.jsonl`` and ``summary.json`` equal a single run's byte for byte
(``summary.json`` except its ``run`` entry). ``lattices.pt``
(``--write-lattices``) stays in the shard folders.
"""
from pathlib import Path
from typing import Any, Dict, List, Optional

from rescorer.errors import ConfigError, Failure, InputFormatError
from rescorer.outputs.wer import load_references
from rescorer.rescoring.collect import ResultCollector
from rescorer.rescoring.combine import Scales
from rescorer.rescoring.config import RescoreConfig, parse_shard
from rescorer.rescoring.grid import Grid
from rescorer.rescoring.records import read_records
from rescorer.rescoring.report import RescoreReport
from rescorer.rescoring.summary import read_summary, write_summary
from rescorer.rescoring.timing import Timings


def merge_shards(folders: List[Path], out: Path, refs: Optional[Path] = None,
                 cuts: Optional[Path] = None) -> RescoreReport:
    """Merge shard output folders into ``out``.

    Args:
      folders:
        The ``--out`` folders of ``rescore --shard I/N`` for I = 1..N (any order).
      out:
        The merged output folder.
      refs / cuts:
        References for the WER rows; by default the ones the shards were given.

    Raises:
      ConfigError: not shards 1..N of one N, differing options, or ``out`` is a file.
      InputFormatError: a shard folder's files are missing or malformed.
    """
    summaries = [read_summary(folder) for folder in folders]
    _check_shards(folders, summaries)
    options = summaries[0]["options"]
    for folder, summary in zip(folders, summaries):
        for key, value in options.items():
            if summary["options"].get(key) != value:
                raise ConfigError(f"option {key!r} differs from {folders[0]}'s ({summary['options'].get(key)!r} "
                                  f"vs {value!r}): shards must be run with the same options", path=folder)
    config = _config(options, out, refs, cuts)
    references = load_references(config.refs, config.cuts)
    report = RescoreReport(files=summaries[0]["run"]["files"])
    collector = ResultCollector(config, references)
    file_failures = set()
    for folder, summary in zip(folders, summaries):
        _add_shard(folder, summary, report, collector, file_failures)
    report.check_oov_rate()
    collector.finish(report)
    run = {"jobs": None, "batch_size": None, "threads": None, "shard": None, "files": report.files,
           "merged_from": [str(folder) for folder in folders]}
    report.outputs.append(write_summary(out, options, report, run))
    return report


def _check_shards(folders: List[Path], summaries: List[Dict[str, Any]]) -> None:
    """The folders must be shards 1..N of one N, each exactly once."""
    shards = []
    for folder, summary in zip(folders, summaries):
        text = summary.get("run", {}).get("shard")
        if text is None:
            raise ConfigError("not a shard output (run `fprescore rescore --shard I/N`)", path=folder)
        shards.append(parse_shard(text))
    counts = {count for _, count in shards}
    if len(counts) != 1:
        raise ConfigError(f"the folders come from different shard counts {sorted(counts)}",
                          path=", ".join(map(str, folders)))
    count = counts.pop()
    indices = sorted(index for index, _ in shards)
    if indices != list(range(1, count + 1)):
        missing = sorted(set(range(1, count + 1)) - set(indices))
        repeated = sorted({index for index in indices if indices.count(index) > 1})
        raise ConfigError(f"need shards 1..{count} once each (missing {missing}, repeated {repeated})",
                          path=", ".join(map(str, folders)))


def _config(options: Dict[str, Any], out: Path, refs: Optional[Path], cuts: Optional[Path]) -> RescoreConfig:
    """The settings ``finish`` needs, rebuilt from a shard's recorded options."""
    def path(value: Optional[str]) -> Optional[Path]:
        return None if value is None else Path(value)

    if refs is None and cuts is None:
        refs, cuts = path(options["refs"]), path(options["cuts"])
    return RescoreConfig(
        lattices=[Path(p) for p in options["inputs"]], model=Path(options["model"]), out=str(out),
        words=path(options["words"]), scales=Scales(**options["scales"]),
        oov_penalty=options["oov_penalty"], beam=options["beam"], max_arcs=options["max_arcs"],
        beam_tries=options["beam_tries"], nbest=options["nbest"], mode=options["mode"],
        history_approx=options["history_approx"], chunk_rows=options["chunk_rows"],
        grid=None if options["grid"] is None else Grid.from_options(options["grid"]),
        refs=refs, cuts=cuts,
        ignore_case=options["ignore_case"], lowercase=options["lowercase"],
        decode=options.get("decode", "viterbi"), mbr_scale=options.get("mbr_scale", 1.0),
        frame_shift=options.get("frame_shift", 0.01),
        ngram_lm=path(options.get("ngram_lm")), ngram_source=options.get("ngram_source", "lattice"),
    )


def _add_shard(folder: Path, summary: Dict[str, Any], report: RescoreReport,
               collector: ResultCollector, file_failures: set) -> None:
    """Add one shard's utterances, failures, counts and timings."""
    grid = collector.config.grid
    for utt_id, (stats, result) in read_records(folder, () if grid is None else grid.names).items():
        if utt_id in report.results:
            raise InputFormatError("utterance appears in two shards (expected each in one)",
                                   path=folder, utt_id=utt_id)
        report.results[utt_id] = stats
        collector.results[utt_id] = result
    for row in summary["failures"]:
        if row["utt"] is None:  # a whole unreadable file: every shard reports it
            key = (row["file"], row["message"])
            if key in file_failures:
                continue
            file_failures.add(key)
        report.failures.append(Failure(None if row["file"] is None else Path(row["file"]), row["utt"],
                                       message=row["message"], problem=row["problem"]))
    report.lattices_read += summary["counts"]["lattices"]
    run = summary["run"]
    report.unique_histories += run["lm_histories_run"]
    def timed(entry: Dict[str, Optional[float]]) -> Dict[str, float]:
        return {name: value for name, value in entry.items() if name != "total" and value is not None}

    report.timings.add(Timings(seconds=timed(run["seconds"]), cpu_seconds=timed(run["cpu_seconds"])))
    report.timings.total += run["seconds"]["total"]
    report.notes += [f"shard {run['shard']}: {note}" for note in run["notes"]]
