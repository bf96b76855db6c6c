"""``utterances.jsonl``: what a ``--shard`` run keeps for ``fprescore merge``.

One JSON object per rescored utterance, sorted by id::

    {"uttid": "dev-0001",
     "stats": {"arcs": 120, "pruned_arcs": 80, ..., "words": 95, "oov_words": 3},
     "first_pass": ["a", "b"] | null,        # with references
     "oracle": [errors, ref_words] | null,   # with a reference
     "pruned_oracle": [errors, ref_words] | null,
     "hypotheses": [<nbest.jsonl objects>] | null,   # without --grid
     "grid": {...},                          # with --grid, below
     "consensus": {<Consensus fields>} | null}   # --decode mbr without --grid

Under ``--grid`` the 1-best and the n-best of every point are kept. Neighbouring
points mostly find the same hypotheses, so each distinct one is stored once
(an nbest.jsonl object without ``rank`` and ``total``) and each point lists
indices into that table (a 9 x 9 grid over asr-dev: 81 n-best lists of 10 per
utterance)::

     "grid": {"hypotheses": [{"uttid", "words", "am", "ngram", "nnlm", ...}, ...],
              "sentences": [["a", "b"], ...],            # the distinct 1-bests
              "points": [{"point": {"lm-scale": 0.5, "word-penalty": -1.0},
                          "onebest": 0,                    # index into sentences
                          "nbest": [[index, total], ...],  # ranks 1, 2, ...
                          "consensus": {...}},             # --decode mbr only
                         ...]}                            # every point, in grid order

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


def _record(utt_id: str, stats: UtteranceStats, result: UtteranceResult,
            names: Tuple[str, ...]) -> Dict[str, Any]:
    """The JSON object of one utterance (``names``: the grid's parameters)."""
    record: Dict[str, Any] = {
        "uttid": utt_id, "stats": asdict(stats), "first_pass": result.first_pass,
        "oracle": result.oracle, "pruned_oracle": result.pruned_oracle,
        "hypotheses": None if result.hypotheses is None else [asdict(h) for h in result.hypotheses],
    }
    if result.consensus is not None:
        record["consensus"] = asdict(result.consensus)
    if result.grid_hypotheses is not None:
        record["grid"] = _grid_record(result, names)
    return record


def _grid_record(result: UtteranceResult, names: Tuple[str, ...]) -> Dict[str, Any]:
    """The ``grid`` entry of one utterance: distinct hypotheses and 1-bests, indexed per point."""
    hypotheses: Dict[Any, int] = {}  # hypothesis without rank and total -> its index
    sentences: Dict[Tuple[str, ...], int] = {}
    points = []
    for point, ranked in result.grid_hypotheses.items():
        rows = []
        for rank, hypothesis in enumerate(ranked, start=1):
            assert hypothesis.rank == rank, "n-best ranks are 1, 2, ..."
            key = tuple((name, tuple(value) if isinstance(value, list) else value)  # hashable
                        for name, value in vars(hypothesis).items() if name not in _PER_POINT)
            rows.append([hypotheses.setdefault(key, len(hypotheses)), hypothesis.total])
        onebest = sentences.setdefault(tuple(result.grid_onebest[point]), len(sentences))
        entry = {"point": dict(zip(names, point)), "onebest": onebest, "nbest": rows}
        if result.grid_consensus is not None:
            entry["consensus"] = asdict(result.grid_consensus[point])
        points.append(entry)
    return {"hypotheses": [{name: (list(value) if isinstance(value, tuple) else value)
                            for name, value in key} for key in hypotheses],
            "sentences": [list(words) for words in sentences], "points": points}


_PER_POINT = ("rank", "total")  # the Hypothesis fields that differ between grid points


def _consensus(record: Dict[str, Any]) -> Consensus:
    """A ``Consensus`` from its JSON object (times back to tuples)."""
    times = record["times"]
    return Consensus(**{**record, "times": None if times is None else [tuple(span) for span in times]})


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
    if record.get("consensus") is not None:
        result.consensus = _consensus(record["consensus"])
    if "grid" in record:
        grid = record["grid"]
        result.grid_hypotheses = {}
        for point in grid["points"]:
            key = tuple(float(point["point"][name]) for name in names)
            result.grid_onebest[key] = list(grid["sentences"][point["onebest"]])
            result.grid_hypotheses[key] = [
                Hypothesis(**grid["hypotheses"][index], rank=rank, total=total)
                for rank, (index, total) in enumerate(point["nbest"], start=1)]
            if "consensus" in point:
                result.grid_consensus = result.grid_consensus or {}
                result.grid_consensus[key] = _consensus(point["consensus"])
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
