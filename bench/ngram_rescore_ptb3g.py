"""``fprescore rescore --ngram-lm`` on asr-dev-ptb3g: decoder agreement, search check, cost.

Runs the real pipeline (``run_rescore``) with ``--ngram-source arpa --ngram-lm
lm/ptbvalid-3g.arpa --ngram-scale 9.5 --word-penalty -0.629606`` (the SLF
header's lmscale and wdpenalty: the decoder's own bestpath score) and
``--lm-scale 0``, then, per utterance whose 1-best differs from the decoder's
``onebest``, scores the decoder's own path (``onebest_path``: link ids = arc
ids of ``read_slf``) with the same exact formula, with our ``NgramLM`` and,
independently, with ``pocketsphinx.NGramModel`` (quantized: ~3e-4 nats per
word). "ours >= decoder" means our exact search found a path at least as good
(no search error); "decoder higher" means the decoder's path was pruned away.

Usage: PYTHONPATH=. python bench/ngram_rescore_ptb3g.py --beam 40 [--limit N] [--model M]
       [--extra "--interpolate 0.5 --lm-scale 9.5"] [--plain]  (--plain: no --ngram-lm, for the ratio)
"""
import argparse
import json
import math
import shlex
import tempfile
import time
from pathlib import Path

import torch

from rescorer.formats.slf import read_slf
from rescorer.lattice.symbols import SymbolTable
from rescorer.ngram.cache import load_ngram
from rescorer.outputs.text import read_transcripts
from rescorer.rescoring.combine import Scales
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.pipeline import run_rescore

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "asr-dev-ptb3g"
LMSCALE, WDPENALTY = 9.5, -0.629606


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beam", type=float, default=40.0, help="0: no pruning")
    parser.add_argument("--limit", type=int, default=240)
    parser.add_argument("--model", type=Path, default=ROOT / "lattices" / "demo-lm.pt")
    parser.add_argument("--max-arcs", type=int, default=2_000_000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--plain", action="store_true", help="plain lattice mode (no --ngram-lm)")
    parser.add_argument("--lm-scale", type=float, default=0.0)
    parser.add_argument("--interpolate", type=float, default=None)
    parser.add_argument("--source", default="arpa")
    args = parser.parse_args()
    files = sorted((DATA / "lat").glob("*.slf.gz"))[: args.limit]
    arpa_path = DATA / "lm" / "ptbvalid-3g.arpa"
    out = Path(tempfile.mkdtemp(prefix="ngram-bench-"))
    scales = Scales(ngram=1.0 if args.plain else LMSCALE, lm=args.lm_scale,
                    word_penalty=0.0 if args.plain else WDPENALTY, interpolation=args.interpolate)
    config = RescoreConfig(lattices=files, model=args.model, out=str(out), scales=scales,
                           beam=args.beam or None, max_arcs=args.max_arcs, nbest=1,
                           batch_size=args.batch_size, refs=DATA / "text",
                           ngram_lm=None if args.plain else arpa_path,
                           ngram_source="lattice" if args.plain else args.source)
    started = time.perf_counter()
    report = run_rescore(config)
    wall = time.perf_counter() - started
    summary = json.loads((out / "summary.json").read_text())
    cpu = summary["run"]["cpu_seconds"]
    print(f"{len(files)} lattices, beam {args.beam:g}, model {args.model.name}, plain={args.plain}, "
          f"scales {scales}, torch {torch.__version__}, --threads {config.threads}")
    print(f"failures {len(report.failures)}; wall {wall:.1f} s; cpu seconds by stage "
          f"{ {k: round(v, 1) for k, v in cpu.items() if v} }; cpu total "
          f"{sum(v for v in cpu.values() if v):.1f} s")
    print("sizes", summary["sizes"], "oov", summary["oov"])
    for row in summary["wer"]:
        print(f"  {row['system']}: WER {row['wer']:.2f}% ({row['errors']}) "
              f"ins/del/sub {row['insertions']}/{row['deletions']}/{row['substitutions']}")
    if args.plain or args.source != "arpa" or args.lm_scale != 0.0:
        return
    check_against_decoder(out, files, arpa_path)


def check_against_decoder(out: Path, files, arpa_path: Path) -> None:
    """Agreement with ``onebest`` and the search check on the decoder's own path."""
    decoder = read_transcripts(DATA / "onebest")
    paths = {line.split()[0]: [int(x) for x in line.split()[1:]]
             for line in open(DATA / "onebest_path", encoding="utf-8")}
    ours = {h["uttid"]: h for h in map(json.loads, (out / "nbest.jsonl").read_text().splitlines())}
    ngram = load_ngram(arpa_path)
    import pocketsphinx

    ps_model = pocketsphinx.NGramModel.readfile(str(arpa_path))

    def ps_score(words):
        history, total = ["<s>"], 0.0
        for word in words + ["</s>"]:
            total += ps_model.prob([word] + history[::-1][:2]) * math.log(1.0001)
            history.append(word)
        return total

    def ids(words):
        return [t for w in words for t in ngram.vocabulary.encode_word(w)]

    agree, verdicts, margins = 0, {"ours >= decoder": 0, "decoder higher": 0}, []
    ps_verdicts = {"ours >= decoder": 0, "decoder higher": 0}
    symbols = SymbolTable()
    for path in files:
        (lattice,), symbols = read_slf(path, symbols)
        utt = lattice.utt_id
        hyp = ours[utt]
        if hyp["words"] == decoder[utt]:
            agree += 1
            continue
        arcs = torch.tensor(paths[utt], dtype=torch.int64)
        am = float(lattice.am_scores.double()[arcs].sum())
        words = decoder[utt]
        theirs = am + LMSCALE * float(ngram.sentence_log_probs([ids(words)])[0]) + WDPENALTY * len(words)
        mine = hyp["am"] + LMSCALE * hyp["arpa"] + WDPENALTY * len(hyp["words"])
        assert abs(mine - hyp["total"]) < 1e-6, (utt, mine, hyp["total"])
        margins.append((mine - theirs, utt))
        verdicts["ours >= decoder" if mine >= theirs - 1e-6 else "decoder higher"] += 1
        ps_mine = hyp["am"] + LMSCALE * ps_score(hyp["words"]) + WDPENALTY * len(hyp["words"])
        ps_theirs = am + LMSCALE * ps_score(words) + WDPENALTY * len(words)
        ps_verdicts["ours >= decoder" if ps_mine >= ps_theirs else "decoder higher"] += 1
    print(f"1-best == decoder onebest: {agree}/{len(files)}")
    print(f"disagreements, scored with our NgramLM: {verdicts}; with pocketsphinx.NGramModel: {ps_verdicts}")
    print("smallest margins (ours - decoder):", sorted(margins)[:5])


if __name__ == "__main__":
    main()
