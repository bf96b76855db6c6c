"""ARPA load time, cached load time and lookups/s (docs/results/ngram.md).

Usage::

    .venv/bin/python bench/arpa_load.py [--arpa FILE ...] [--synthetic-order 4] [--threads 1]

Without ``--arpa`` it times the asr-dev-ptb3g trigram and a synthetic 4-gram
built here (into exp/bench-arpa/) from the shared PTB and WikiText-2 texts:
counts of every 1..4-gram with absolute discounting (D = 0.5). The synthetic
model is not normalised; it only gives a file of realistic shape and size.
Lookups are random (history, word) pairs over the vocabulary (mostly
back-offs) plus n-grams of the file, scored in batches of 100k.
"""
import argparse
import gzip
import math
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import List

import torch

from rescorer.ngram.cache import cache_file, load_ngram

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
TEXTS = [SHARED / "ptb" / "ptb.valid.txt", SHARED / "ptb" / "ptb.test.txt",
         SHARED / "wikitext-2" / "valid.txt", SHARED / "wikitext-2" / "test.txt"]


def write_synthetic(path: Path, order: int) -> None:
    """An absolute-discounting n-gram ARPA of the shared texts (shape, not quality)."""
    counts: List[Counter] = [Counter() for _ in range(order)]
    for text in TEXTS:
        for line in open(text, encoding="utf-8"):
            words = ["<s>"] + line.split() + ["</s>"]
            for k in range(1, order + 1):
                counts[k - 1].update(tuple(words[i:i + k]) for i in range(len(words) - k + 1))
    context_totals = [Counter() for _ in range(order)]
    continuations = [Counter() for _ in range(order)]
    for k in range(2, order + 1):
        for gram, count in counts[k - 1].items():
            context_totals[k - 2][gram[:-1]] += count
            continuations[k - 2][gram[:-1]] += 1
    total = sum(counts[0].values())
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write("\\data\\\n" + "".join(f"ngram {k}={len(counts[k - 1])}\n" for k in range(1, order + 1)))
        for k in range(1, order + 1):
            out.write(f"\n\\{k}-grams:\n")
            for gram, count in counts[k - 1].items():
                denominator = total if k == 1 else context_totals[k - 2][gram[:-1]]
                line = f"{math.log10(max(count - 0.5, 0.1) / denominator):.6f}\t{' '.join(gram)}"
                if k < order and gram in continuations[k - 1]:
                    backoff = 0.5 * continuations[k - 1][gram] / context_totals[k - 1][gram]
                    line += f"\t{math.log10(backoff):.6f}"
                out.write(line + "\n")
        out.write("\n\\end\\\n")


def lookups_per_second(model, count: int = 100_000, rounds: int = 5) -> float:
    rng = random.Random(0)
    size = model.vocabulary.size
    context = model.order - 1
    window = torch.tensor([[rng.randrange(size) for _ in range(context)] for _ in range(count)])
    window[: count // 4, 0] = model.vocabulary.bos_id  # some sentence starts
    tokens = torch.tensor([rng.randrange(size) for _ in range(count)])
    lengths = torch.full((count,), context, dtype=torch.int64)
    model.log_probs(window, lengths, tokens)  # warm-up
    start = time.perf_counter()
    for _ in range(rounds):
        model.log_probs(window, lengths, tokens)
    return rounds * count / (time.perf_counter() - start)


def measure(path: Path, cache_dir: Path) -> str:
    target = cache_file(path, cache_dir)
    if target.exists():
        target.unlink()
    start = time.perf_counter()
    model = load_ngram(path, cache_dir=cache_dir)
    parsed = time.perf_counter() - start
    start = time.perf_counter()
    load_ngram(path, cache_dir=cache_dir)
    cached = time.perf_counter() - start
    ngrams = sum(int(table.keys.numel()) for table in model.tables)
    rate = lookups_per_second(model)
    row = (f"| {path.name} | {model.order} | {ngrams:,} | {path.stat().st_size / 1e6:.1f} | "
           f"{parsed:.2f} | {cached:.3f} | {target.stat().st_size / 1e6:.1f} | {rate / 1e6:.2f} |")
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arpa", type=Path, nargs="*", default=None)
    parser.add_argument("--synthetic-order", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "exp" / "bench-arpa")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    paths = args.arpa
    if paths is None:
        synthetic = args.out / f"synthetic-{args.synthetic_order}g.arpa.gz"
        if not synthetic.exists():
            start = time.perf_counter()
            write_synthetic(synthetic, args.synthetic_order)
            print(f"wrote {synthetic} in {time.perf_counter() - start:.1f} s")
        paths = [SHARED / "asr-dev-ptb3g" / "lm" / "ptbvalid-3g.arpa", synthetic]
    print(f"torch {torch.__version__}, {args.threads} thread(s), load {os.getloadavg()}")
    print("| file | order | n-grams (+holes) | MB on disk | parse s | cached load s | cache MB | M lookups/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for path in paths:
        measure(path, args.out / "cache")


if __name__ == "__main__":
    main()
