"""``utterances.jsonl``: what a ``--shard`` run keeps for ``fprescore merge``.

One JSON object per rescored utterance, sorted by id::

    {"uttid": "dev-0001",
     "stats": {"arcs": 120, "pruned_arcs": 80, ..., "words": 95, "oov_words": 3},
     "first_pass": ["a", "b"] | null,        # with references
     "oracle": [errors, ref_words] | null,   # with a reference
     "pruned_oracle": [errors, ref_words] | null,
     "hypotheses": [<nbest.jsonl objects>] | null,   # without --grid
     "grid": [{"lm_scale": 0.5, "onebest": [...], "hypotheses": [...]}, ...],  # with --grid
     "consensus": {<Consensus fields>} | null}   # --decode mbr; with --grid in each point

Floats are written with ``repr`` precision (JSON), so they read back exactly.
"""
import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Dict, Tuple

from rescorer.atomic import atomic_write_text
from rescorer.errors import InputFormatError
from rescorer.outputs.text import Consensus, Hypothesis
from rescorer.rescoring.collect import ResultCollector, UtteranceResult
from rescorer.rescoring.report import RescoreReport, UtteranceStats

RECORDS = "utterances.jsonl"


def _record(utt_id: str, stats: UtteranceStats, result: UtteranceResult) -> Dict[str, Any]:
    """The JSON object of one utterance."""
    record: Dict[str, Any] = {
        "uttid": utt_id, "stats": asdict(stats), "first_pass": result.first_pass,
        "oracle": result.oracle, "pruned_oracle": result.pruned_oracle,
        "hypotheses": None if result.hypotheses is None else [asdict(h) for h in result.hypotheses],
    }
    if result.consensus is not None:
        record["consensus"] = asdict(result.consensus)
    if result.grid_hypotheses is not None:
        record["grid"] = [
            {"lm_scale": scale, "onebest": result.grid_onebest[scale],
             "hypotheses": [asdict(h) for h in hypotheses]}
            for scale, hypotheses in result.grid_hypotheses.items()
        ]
        if result.grid_consensus is not None:
            for point in record["grid"]:
                point["consensus"] = asdict(result.grid_consensus[point["lm_scale"]])
    return record


def _consensus(record: Dict[str, Any]) -> Consensus:
    """A ``Consensus`` from its JSON object (times back to tuples)."""
    times = record["times"]
    return Consensus(**{**record, "times": None if times is None else [tuple(span) for span in times]})


def write_records(out: Path, report: RescoreReport, collector: ResultCollector) -> Path:
    """Write ``out/utterances.jsonl`` atomically; returns its path."""
    path = out / RECORDS
    lines = [json.dumps(_record(utt, report.results[utt], collector.results[utt]), ensure_ascii=False)
             for utt in sorted(report.results)]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path


def _result(record: Dict[str, Any]) -> UtteranceResult:
    """The ``UtteranceResult`` of one JSON object."""
    def pair(value: Any) -> Any:
        return None if value is None else (int(value[0]), int(value[1]))

    result = UtteranceResult(record["uttid"], record["first_pass"], pair(record["oracle"]),
                             pair(record["pruned_oracle"]))
    if record["hypotheses"] is not None:
        result.hypotheses = [Hypothesis(**hyp) for hyp in record["hypotheses"]]
    if record.get("consensus") is not None:
        result.consensus = _consensus(record["consensus"])
    if "grid" in record:
        result.grid_hypotheses = {}
        for point in record["grid"]:
            scale = float(point["lm_scale"])
            result.grid_onebest[scale] = point["onebest"]
            result.grid_hypotheses[scale] = [Hypothesis(**hyp) for hyp in point["hypotheses"]]
            if "consensus" in point:
                result.grid_consensus = result.grid_consensus or {}
                result.grid_consensus[scale] = _consensus(point["consensus"])
    return result


def read_records(folder: Path) -> Dict[str, Tuple[UtteranceStats, UtteranceResult]]:
    """Utterance id -> (stats, result) from ``folder/utterances.jsonl``.

    Raises:
      InputFormatError: the file is missing or malformed (names the file and line).
    """
    path = folder / RECORDS
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputFormatError(f"cannot read the shard's utterance records ({error}); expected the "
                               f"--out folder of `fprescore rescore --shard I/N`", path=path) from error
    names = {field.name for field in fields(UtteranceStats)}
    records = {}
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
            stats = UtteranceStats(**{key: int(value) for key, value in record["stats"].items()
                                      if key in names})
            records[record["uttid"]] = (stats, _result(record))
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise InputFormatError(f"malformed utterance record ({error!r})", path=path,
                                   where=f"line {number}") from error
    return records
