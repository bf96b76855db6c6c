"""Exact ARPA first pass and MBR decoding on asr-dev-ptb3g, from the library parts.

Not the ``fprescore rescore`` pipeline (``--decode mbr`` is not wired yet;
``--ngram-lm`` is, and ``bench/ngram_rescore_ptb3g.py`` runs it): this script
chains the components by hand to check them on real lattices (docs/results/ngram.md):

1. ``lattice 1-best``: Viterbi with the SLF's fixed ``l`` (a + lmscale*l + wdpenalty).
2. ``exact ARPA``: the lattice expanded to 2 words of history
   (``expand_histories``), every word scored by ``NgramLM`` from
   ``lm/ptbvalid-3g.arpa``, Viterbi with a + lmscale*ln P + wdpenalty, the
   README's score; agreement with the decoder's ``onebest`` is reported.
3. MBR (``mbr_decode``) on the exact-ARPA expanded lattice, posterior scale
   1/lmscale (Kaldi's acoustic scale 1/LMWT convention), and on the plain lattice.

Usage: .venv/bin/python bench/ngram_mbr_ptb3g.py [--limit N] [--threads 1] [--scales 0.105,0.2] [--beam 40]

The decoder-path check assumes the SLF reader keeps link J as arc J (true for these files:
the words along onebest_path are the decoder's onebest).
"""
import argparse
import gzip
import time
from pathlib import Path
from typing import Dict, List

import torch

from rescorer.algorithms.single import best_path
from rescorer.algorithms.single import expand_histories
from rescorer.algorithms.mbr import mbr_decode
from rescorer.algorithms.single import prune_by_beam
from rescorer.errors import ExpansionLimitError
from rescorer.formats.slf import read_slf
from rescorer.lattice.symbols import SymbolTable
from rescorer.ngram.cache import load_ngram
from rescorer.ngram.lattice import expanded_arc_log_probs
from rescorer.outputs.text import read_transcripts
from rescorer.outputs.wer import compute_wer
from rescorer.rescoring.tokens import ArcTokenizer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "asr-dev-ptb3g"


def header_value(path: Path, key: str) -> float:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith(key + "="):
                return float(line.split("=", 1)[1])
    raise SystemExit(f"{path}: no {key}=")


def exact_lattice(lattice, symbols, model, tokenizer, lmscale, wdpenalty, beam, max_arcs):
    """The trigram-expanded lattice and its arc scores a + lmscale*ln P_arpa + penalty.

    The lattice is first pruned to ``beam`` around its fixed-l Viterbi score
    (halved up to 4 times while the expansion needs more than ``max_arcs``).
    """
    plain = lattice.am_scores.double() + lattice.ngram_scores.double()
    for _ in range(5):
        pruned, _ = prune_by_beam(lattice, plain, beam)
        try:
            return _expand(pruned, model, tokenizer, lmscale, wdpenalty, max_arcs) + (beam,)
        except ExpansionLimitError:
            beam /= 2
    raise SystemExit(f"{lattice.utt_id}: expansion too large even at beam {beam}")


def _expand(lattice, model, tokenizer, lmscale, wdpenalty, max_arcs):
    penalty = wdpenalty * (lattice.words_per_arc + (lattice.labels == -1).to(torch.int64)).double()
    tokens = tokenizer.encode(lattice)
    expanded = expand_histories(lattice, tokens.splits, tokens.tokens, model.order - 1,
                                model.vocabulary.bos_id, model.vocabulary.eos_id, max_arcs)
    lm = expanded_arc_log_probs(expanded, model)
    orig = expanded.orig_arc
    total = lattice.am_scores.double()[orig] + lmscale * lm + penalty[orig]
    return expanded.lattice, total


def decoder_path_score(lattice, symbols, model, utt_path, lmscale, wdpenalty) -> float:
    """The exact score of the decoder's own path (``onebest_path`` link ids = arc ids)."""
    arcs = torch.tensor(utt_path, dtype=torch.int64)
    penalty = wdpenalty * (lattice.words_per_arc + (lattice.labels == -1).to(torch.int64)).double()
    ids = [t for w in words_of(lattice, arcs, symbols) for t in model.vocabulary.encode_word(w)]
    lm = float(model.sentence_log_probs([ids])[0])
    return float(lattice.am_scores.double()[arcs].sum() + penalty[arcs].sum()) + lmscale * lm


def words_of(lattice, arcs, symbols) -> List[str]:
    return [symbols.word(w) for arc in arcs.tolist() for w in lattice.arc_words(arc)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=240)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scales", default="0.105263,0.2")
    parser.add_argument("--beam", type=float, default=40.0)
    parser.add_argument("--max-arcs", type=int, default=2_000_000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scales = [float(x) for x in args.scales.split(",")]
    model = load_ngram(DATA / "lm" / "ptbvalid-3g.arpa")
    references = read_transcripts(DATA / "text")
    decoder = read_transcripts(DATA / "onebest")
    symbols = SymbolTable()
    tokenizer = ArcTokenizer(model.vocabulary, symbols)
    hyps: Dict[str, Dict[str, List[str]]] = {}
    seconds: Dict[str, float] = {}
    beams: List[float] = []
    verdicts: List[str] = []
    decoder_paths = {line.split()[0]: [int(x) for x in line.split()[1:]]
                     for line in open(DATA / "onebest_path", encoding="utf-8")}
    files = sorted((DATA / "lat").glob("*.slf.gz"))[: args.limit]
    for path in files:
        (lattice,), symbols = read_slf(path, symbols)
        lmscale, wdpenalty = header_value(path, "lmscale"), header_value(path, "wdpenalty")
        utt = lattice.utt_id
        plain = lattice.am_scores.double() + lattice.ngram_scores.double()
        _, arcs = best_path(lattice, plain)
        hyps.setdefault("lattice 1-best (fixed l)", {})[utt] = words_of(lattice, arcs, symbols)
        start = time.perf_counter()
        expanded, total, beam = exact_lattice(lattice, symbols, model, tokenizer, lmscale, wdpenalty,
                                              args.beam, args.max_arcs)
        beams.append(beam)
        _, arcs = best_path(expanded, total)
        seconds["exact ARPA 1-best"] = seconds.get("exact ARPA 1-best", 0.0) + time.perf_counter() - start
        hyps.setdefault("exact ARPA 1-best", {})[utt] = words_of(expanded, arcs, symbols)
        if hyps["exact ARPA 1-best"][utt] != decoder[utt]:  # search error or model difference?
            ours = float(total[arcs].sum())
            theirs = decoder_path_score(lattice, symbols, model, decoder_paths[utt], lmscale, wdpenalty)
            verdicts.append("exact path scores higher" if ours >= theirs else "decoder path pruned away")
        for scale in scales:
            for name, graph, scores in (("exact ARPA", expanded, total), ("fixed l", lattice, plain)):
                label = f"MBR on {name}, scale {scale:g}"
                start = time.perf_counter()
                result = mbr_decode(graph, scores, scale=scale)
                seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - start
                hyps.setdefault(label, {})[utt] = [symbols.word(w) for w in result.word_ids.tolist()]
    print(f"{len(files)} utterances, torch {torch.__version__}, {args.threads} thread(s), "
          f"beam {args.beam} (smaller for {sum(b < args.beam for b in beams)} utterances), "
          f"max arcs {args.max_arcs}")
    print("| system | WER | ins/del/sub | = decoder 1-best | seconds |")
    print("|---|---:|---:|---:|---:|")
    for name, table in [("decoder 1-best", {u: decoder[u] for u in hyps["exact ARPA 1-best"]})] + list(hyps.items()):
        stats = compute_wer({u: references[u] for u in table}, table)
        agree = sum(table[u] == decoder[u] for u in table)
        spent = f"{seconds[name]:.1f}" if name in seconds else ""
        print(f"| {name} | {stats.describe()} | {stats.insertions}/{stats.deletions}/{stats.substitutions} "
              f"| {agree}/{len(table)} | {spent} |", flush=True)
    print("exact ARPA 1-best != decoder 1-best:",
          {verdict: verdicts.count(verdict) for verdict in sorted(set(verdicts))})


if __name__ == "__main__":
    main()
