"""Does our SLF reader + ARPA scorer reproduce pocketsphinx's decoder on asr-dev-ptb3g?

Two searches over the 240 lattices, both with the set's score (README: a +
9.5 ln P_trigram + wdpenalty per real word and end, the exact trigram from
``lm/ptbvalid-3g.arpa`` by our ``NgramLM``):

(a) pocketsphinx's bestpath recursion re-implemented (``tests/rescoring/
    ps_bestpath.py``: one state per link, history through fillers from the best
    path into them) on the lattices as ``read_slf`` gives them, unpruned;
(b) our exact first pass, ``run_rescore`` with ``--ngram-source arpa
    --ngram-scale 9.5 --word-penalty -0.629606 --lm-scale 0`` at ``--beam``
    (the test's 40), or the ``nbest.jsonl`` of such a run (``--exact-nbest``).

Prints each one's agreement with the decoder's ``onebest`` and, wherever (a)
and (b) differ in words, whether the exact path's score is >= the recursion
path's (it must be, unless the recursion's path lies outside (b)'s beam: that
is checked with the same pruning the pipeline applies first).

Usage: PYTHONPATH=. python bench/decoder_agreement.py [--beam 40] [--limit N] [--exact-nbest FILE]
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from rescorer.algorithms.prune import prune_by_beam
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.formats.slf import read_slf
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.symbols import SymbolTable
from rescorer.ngram.cache import load_ngram
from rescorer.outputs.text import read_transcripts
from rescorer.rescoring.combine import Scales
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.pipeline import run_rescore

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "rescoring"))
from ps_bestpath import ps_bestpath  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "asr-dev-ptb3g"
LMSCALE, WDPENALTY = 9.5, -0.629606
TOLERANCE = 1e-6


def exact_nbest(files, beam: float) -> dict:
    """(b): the pipeline's 1-best per utterance (nbest.jsonl rows by uttid, with ``beam``:
    the beam each one was pruned with, halved once per retry over ``--max-arcs``)."""
    out = Path(tempfile.mkdtemp(prefix="agreement-"))
    config = RescoreConfig(
        lattices=files, model=ROOT / "lattices" / "demo-lm.pt", out=str(out), nbest=1,
        scales=Scales(ngram=LMSCALE, lm=0.0, word_penalty=WDPENALTY), beam=beam,
        max_arcs=2_000_000, ngram_lm=DATA / "lm" / "ptbvalid-3g.arpa", ngram_source="arpa")
    started = time.process_time()
    report = run_rescore(config)
    print(f"(b) run_rescore: {len(report.results)} results, {len(report.failures)} failures, "
          f"{time.process_time() - started:.1f} s CPU; nbest {out / 'nbest.jsonl'}")
    hypotheses = read_nbest(out / "nbest.jsonl")
    for utt, stats in report.results.items():
        hypotheses[utt]["beam"] = beam / 2 ** stats.tightened
    tightened = sum(stats.tightened > 0 for stats in report.results.values())
    print(f"(b) {tightened} utterances pruned with a tighter beam (their expansion exceeded --max-arcs)")
    return hypotheses


def reused_nbest(path: Path, beam: float) -> dict:
    """(b) from an earlier run's ``nbest.jsonl``; each utterance's beam from its ``summary.json``."""
    hypotheses = read_nbest(path)
    summary = path.parent / "summary.json"
    if summary.is_file():
        for row in json.loads(summary.read_text())["utterances"]:
            hypotheses[row["utt"]]["beam"] = beam / 2 ** row["tightened"]
    return hypotheses


def read_nbest(path: Path) -> dict:
    return {h["uttid"]: h for h in map(json.loads, path.read_text().splitlines())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beam", type=float, default=40.0)
    parser.add_argument("--limit", type=int, default=240)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--exact-nbest", type=Path, help="reuse this run's nbest.jsonl for (b)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    files = sorted((DATA / "lat").glob("*.slf.gz"))[: args.limit]
    ngram = load_ngram(DATA / "lm" / "ptbvalid-3g.arpa")
    symbols, lattices = SymbolTable(), []
    for path in files:
        (lattice,), symbols = read_slf(path, symbols)
        lattices.append(lattice)
    started = time.process_time()
    recursion = {}
    for first in range(0, len(lattices), args.batch_size):
        chunk = lattices[first:first + args.batch_size]
        found = ps_bestpath(LatticeBatch.from_lattices(chunk), symbols, ngram, LMSCALE, WDPENALTY)
        for index, lattice in enumerate(chunk):
            recursion[lattice.utt_id] = (float(found.scores[index]), found.arcs[index],
                                         found.words[index], lattice)
    print(f"(a) recursion: {len(lattices)} lattices, {time.process_time() - started:.1f} s CPU")
    ours = reused_nbest(args.exact_nbest, args.beam) if args.exact_nbest else exact_nbest(files, args.beam)
    compare(recursion, ours, ngram, args.beam)


def exact_total(ngram, am: float, words) -> float:
    """The pipeline's ``total``: am + lmscale ln P(words </s> | <s>) + wdpenalty per word."""
    ids = [t for w in words for t in ngram.vocabulary.encode_word(w)]
    return am + LMSCALE * float(ngram.sentence_log_probs([ids])[0]) + WDPENALTY * len(words)


def in_beam(lattice, arcs, beam: float) -> bool:
    """Whether the path ``arcs`` survives the pipeline's first-pass pruning."""
    batch = LatticeBatch.from_lattices([lattice])
    _, kept = prune_by_beam(LevelSchedule.of(batch),
                            batch.am_scores.double() + batch.ngram_scores.double(), beam)
    return bool(torch.isin(arcs, kept).all())


def compare(recursion: dict, ours: dict, ngram, beam: float) -> None:
    decoder = read_transcripts(DATA / "onebest")
    paths = {line.split()[0]: [int(x) for x in line.split()[1:]]
             for line in open(DATA / "onebest_path", encoding="utf-8")}
    counts = {"a": 0, "b": 0, "a path": 0, "differ": 0, "b >= a": 0, "b < a, a outside beam": 0,
              "b < a, a inside beam (BUG)": 0}
    rows, misses = [], []
    for utt, (score, arcs, words, lattice) in recursion.items():
        am = float(lattice.am_scores.double()[arcs].sum())
        mine = exact_total(ngram, am, words)
        assert abs(mine - (score - WDPENALTY)) < 1e-6 * max(1.0, abs(mine)), (utt, mine, score)
        counts["a"] += words == decoder[utt]
        counts["a path"] += arcs.tolist() == paths[utt]
        counts["b"] += ours[utt]["words"] == decoder[utt]
        if words != decoder[utt]:
            theirs = exact_total(ngram, float(lattice.am_scores.double()[paths[utt]].sum()), decoder[utt])
            misses.append((utt, mine - theirs))
        if ours[utt]["words"] == words:
            continue
        counts["differ"] += 1
        margin = ours[utt]["total"] - mine
        if margin >= -TOLERANCE:
            counts["b >= a"] += 1
        elif in_beam(lattice, arcs, ours[utt].get("beam", beam)):
            counts["b < a, a inside beam (BUG)"] += 1
        else:
            counts["b < a, a outside beam"] += 1
        rows.append((utt, margin, ours[utt]["words"] == decoder[utt], words == decoder[utt]))
    total = len(recursion)
    print(f"\n| search | = decoder onebest |\n|---|---:|\n"
          f"| (a) pocketsphinx recursion, unpruned | {counts['a']}/{total} "
          f"(same link path: {counts['a path']}) |\n"
          f"| (b) exact --ngram-source arpa, beam {beam:g} | {counts['b']}/{total} |")
    print(f"\n(a) vs (b) word strings differ in {counts['differ']}: "
          f"exact >= recursion in {counts['b >= a']}, recursion higher with its path outside "
          f"the beam in {counts['b < a, a outside beam']}, recursion higher inside the beam "
          f"(a search bug) in {counts['b < a, a inside beam (BUG)']}")
    margins = sorted(margin for _, margin, _, _ in rows)
    if margins:
        print(f"exact - recursion score, min/median/max: {margins[0]:.3f} / "
              f"{margins[len(margins) // 2]:.3f} / {margins[-1]:.3f}")
    print("(a)'s misses, recursion path - decoder path (exact score):",
          ", ".join(f"{u} {m:+.3f}" for u, m in misses))
    print("(a) != (b):", ", ".join(f"{u} {m:+.2f}{' b=dec' if bd else ''}{' a=dec' if ad else ''}"
                                  for u, m, bd, ad in rows))


if __name__ == "__main__":
    main()
