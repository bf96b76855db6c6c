"""``utterances.jsonl``: what a ``--shard`` run keeps for ``fprescore merge``.

One JSON object per rescored utterance, sorted by id::

    {"uttid": "dev-0001",
     "stats": {"arcs": 120, "pruned_arcs": 80, ..., "words": 95, "oov_words": 3},
     "first_pass": ["a", "b"] | null,        # with references
     "oracle": [errors, ref_words] | null,   # with a reference
     "pruned_oracle": [errors, ref_words] | null,
     "hypotheses": [<nbest.jsonl objects>] | null,   # without --grid
     "grid": [{"point": {"lm-scale": 0.5, "word-penalty": -1.0}, "onebest": [...],
               "hypotheses": [...]}, ...]}   # with --grid: every point, in grid order

Floats are written with ``repr`` precision (JSON), so they read back exactly.
"""
import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Dict, Tuple

from rescorer.atomic import atomic_write_text
from rescorer.errors import InputFormatError
from rescorer.outputs.text import Hypothesis
from rescorer.rescoring.collect import ResultCollector, UtteranceResult
from rescorer.rescoring.report import RescoreReport, UtteranceStats

RECORDS = "utterances.jsonl"


def _record(utt_id: str, stats: UtteranceStats, result: UtteranceResult,
            names: Tuple[str, ...]) -> Dict[str, Any]:
    """The JSON object of one utterance (``names``: the grid's parameters)."""
    record: Dict[str, Any] = {
        "uttid": utt_id, "stats": asdict(stats), "first_pass": result.first_pass,
        "oracle": result.oracle, "pruned_oracle": result.pruned_oracle,
        "hypotheses": None if result.hypotheses is None else [asdict(h) for h in result.hypotheses],
    }
    if result.grid_hypotheses is not None:
        record["grid"] = [
            {"point": dict(zip(names, point)), "onebest": result.grid_onebest[point],
             "hypotheses": [asdict(h) for h in hypotheses]}
            for point, hypotheses in result.grid_hypotheses.items()
        ]
    return record


def write_records(out: Path, report: RescoreReport, collector: ResultCollector) -> Path:
    """Write ``out/utterances.jsonl`` atomically; returns its path."""
    path = out / RECORDS
    names = () if collector.config.grid is None else collector.config.grid.names
    lines = [json.dumps(_record(utt, report.results[utt], collector.results[utt], names),
                        ensure_ascii=False)
             for utt in sorted(report.results)]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path


def _result(record: Dict[str, Any], names: Tuple[str, ...]) -> UtteranceResult:
    """The ``UtteranceResult`` of one JSON object (``names``: the grid's parameters)."""
    def pair(value: Any) -> Any:
        return None if value is None else (int(value[0]), int(value[1]))

    result = UtteranceResult(record["uttid"], record["first_pass"], pair(record["oracle"]),
                             pair(record["pruned_oracle"]))
    if record["hypotheses"] is not None:
        result.hypotheses = [Hypothesis(**hyp) for hyp in record["hypotheses"]]
    if "grid" in record:
        result.grid_hypotheses = {}
        for point in record["grid"]:
            key = tuple(float(point["point"][name]) for name in names)
            result.grid_onebest[key] = point["onebest"]
            result.grid_hypotheses[key] = [Hypothesis(**hyp) for hyp in point["hypotheses"]]
    return result


def read_records(folder: Path, names: Tuple[str, ...] = ()) -> Dict[str, Tuple[UtteranceStats, UtteranceResult]]:
    """Utterance id -> (stats, result) from ``folder/utterances.jsonl``.

    Args:
      folder:
        A ``--shard`` output folder.
      names:
        The parameters of the shards' ``--grid`` (empty without one).

    Raises:
      InputFormatError: the file is missing or malformed (names the file and line).
    """
    path = folder / RECORDS
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputFormatError(f"cannot read the shard's utterance records ({error}); expected the "
                               f"--out folder of `fprescore rescore --shard I/N`", path=path) from error
    stat_names = {field.name for field in fields(UtteranceStats)}
    records = {}
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
            stats = UtteranceStats(**{key: int(value) for key, value in record["stats"].items()
                                      if key in stat_names})
            records[record["uttid"]] = (stats, _result(record, names))
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise InputFormatError(f"malformed utterance record ({error!r})", path=path,
                                   where=f"line {number}") from error
    return records
