"""Training data at scale: cache build speed and memory, training memory, first batch, throughput.

For each corpus size N (words) it:

1. writes a synthetic corpus of N words to ``--work`` (an ignored folder), by
   sampling whole sentences (seeded, with replacement) from the shared PTB and
   WikiText-2 text in ``../shared/data``;
2. builds its token cache in a fresh process: wall time, words/s, peak RSS;
3. runs a short training in a fresh process from that cache (``--train-seconds``,
   validation bounded by ``--valid-max-tokens``): peak RSS and the time from
   process start to the first training batch;

then measures training tokens/s on PTB-mini (train on ``ptb.valid.txt``) with the
same model and step fed from the in-memory batch (``contiguous_rows``) and from
the cache (``training_rows``), in interleaved rounds, median reported.

Peak RSS is the process's ``ru_maxrss`` (it includes touched pages of the
memory-mapped cache). The corpora are deleted afterwards unless ``--keep``.

Example (the figures in docs/results/data_scale.md):
    python bench/data_scale.py --words 10000000 100000000 --work exp/data-scale
"""
import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCES = [SHARED / "ptb" / "ptb.valid.txt", SHARED / "ptb" / "ptb.test.txt",
           SHARED / "wikitext-2" / "valid.txt", SHARED / "wikitext-2" / "test.txt"]
STARTED = time.monotonic()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def import_rss_mb() -> float:
    """Peak RSS of a process that only imports the package (torch included): the floor."""
    done = subprocess.run([sys.executable, "-c", "import resource, rescorer.training.loop; "
                           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)"],
                          capture_output=True, text=True, check=True)
    return float(done.stdout)


def write_corpus(path: Path, words: int, seed: int = 0) -> Dict[str, Any]:
    """Sample sentences from SOURCES until ``words`` words; returns size facts."""
    lines = [line for source in SOURCES for line in source.read_text(encoding="utf-8").splitlines() if line.split()]
    lengths = [len(line.split()) for line in lines]
    rng = random.Random(seed)
    written = 0
    started = time.monotonic()
    with open(path, "w", encoding="utf-8") as out:
        while written < words:
            picks = rng.choices(range(len(lines)), k=100_000)
            block = []
            for index in picks:
                block.append(lines[index])
                written += lengths[index]
                if written >= words:
                    break
            out.write("\n".join(block) + "\n")
    return {"words": written, "bytes": path.stat().st_size, "seconds": time.monotonic() - started}


def worker_build(args: argparse.Namespace) -> Dict[str, Any]:
    from rescorer.data.prepare import VocabularyRecipe, prepare_corpus

    started, cpu_started = time.monotonic(), time.process_time()
    cache, vocab = prepare_corpus(args.corpus, args.cache, recipe=VocabularyRecipe(max_vocab_size=args.vocab_size))
    seconds, cpu_seconds = time.monotonic() - started, time.process_time() - cpu_started
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "words": cache.words, "tokens": len(cache),
            "sentences": cache.sentences, "words_per_second": cache.words / seconds,
            "words_per_cpu_second": cache.words / cpu_seconds, "vocab": vocab.size, "oov_rate": cache.oov_rate,
            "dtype": str(cache.tokens.dtype), "peak_rss_mb": peak_rss_mb()}


def worker_train(args: argparse.Namespace) -> Dict[str, Any]:
    import torch

    from rescorer.model.config import ModelConfig
    from rescorer.training.config import TrainConfig
    from rescorer.training.loop import train
    from rescorer.training.reporting import Reporter

    torch.set_num_threads(args.threads)

    class FirstBatch(Reporter):
        first = None
        steps = 0

        def step(self, tokens: int, loss: float) -> None:
            self.steps += 1
            if self.first is None:
                self.first = time.monotonic() - STARTED

    reporter = FirstBatch()
    config = TrainConfig(
        train_path=args.corpus, valid_path=SHARED / "ptb" / "ptb.test.txt", out_dir=Path(args.out),
        architecture=ModelConfig(vocab_size=1, embed_dim=args.hidden, hidden_dim=args.hidden, iterations=4),
        epochs=1, device="cpu", max_minutes=args.train_seconds / 60.0, cache_dir=Path(args.cache),
        max_vocab_size=args.vocab_size, valid_max_tokens=args.valid_max_tokens,
    )
    train(config, reporter)
    return {"first_batch_seconds": reporter.first, "steps": reporter.steps, "peak_rss_mb": peak_rss_mb()}


def worker(args: argparse.Namespace) -> None:
    result = worker_build(args) if args.worker == "build" else worker_train(args)
    print(json.dumps(result))


def run_worker(kind: str, **options: Any) -> Dict[str, Any]:
    command = [sys.executable, __file__, "--worker", kind]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def throughput(args: argparse.Namespace) -> Dict[str, Any]:
    """Training tokens/s on PTB-mini, in-memory batch vs cache rows, same model and step."""
    import tempfile

    import torch
    import torch.nn.functional as F

    from rescorer.data.batching import contiguous_rows, encode_sentences
    from rescorer.data.corpus import read_sentences
    from rescorer.data.prepare import prepare_corpus
    from rescorer.data.rows import training_rows
    from rescorer.model.config import ModelConfig
    from rescorer.model.lm import FixedPointLM, detach_state

    torch.set_num_threads(args.threads)
    text = SHARED / "ptb" / "ptb.valid.txt"
    folder = tempfile.mkdtemp(prefix="fprescore-bench-")
    cache, vocab = prepare_corpus(text, folder)
    sources = {"in-memory": contiguous_rows(encode_sentences(read_sentences(text), vocab), 20),
               "cache": training_rows(cache, 20)}
    torch.manual_seed(0)
    model = FixedPointLM(ModelConfig(vocab_size=vocab.size, embed_dim=args.hidden, hidden_dim=args.hidden,
                                     iterations=4))
    device = torch.device(args.device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rates: Dict[str, List[float]] = {name: [] for name in sources}
    data_share: Dict[str, List[float]] = {name: [] for name in sources}
    segments = sources["cache"].num_segments(35)
    for round_index in range(args.rounds):
        order = list(sources.items())
        for name, rows in order if round_index % 2 == 0 else order[::-1]:  # alternate who goes first
            state, tokens, data_seconds = None, 0, 0.0
            started = time.perf_counter()
            for step in range(args.steps):
                fetched = time.perf_counter()
                segment = rows.segment((round_index * args.steps + step) % segments, 35).to(device)
                data_seconds += time.perf_counter() - fetched
                logits, state = model(segment.inputs, segment.resets, state)
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), segment.targets.reshape(-1))
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
                optimizer.step()
                state = detach_state(state)
                tokens += segment.targets.numel()
            if device.type == "cuda":
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - started
            rates[name].append(tokens / elapsed)
            data_share[name].append(data_seconds / elapsed)
    shutil.rmtree(folder, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in rates.items()}
    # The share of step time spent fetching the batch: on a GPU, the time it idles waiting for data.
    share = {name: statistics.median(values) for name, values in data_share.items()}
    return {"tokens_per_second": median, "ratio": median["cache"] / median["in-memory"], "data_time_share": share,
            "rounds": args.rounds, "steps": args.steps, "device": args.device}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--words", type=float, nargs="*", default=[1e7])
    parser.add_argument("--work", default="exp/data-scale")
    parser.add_argument("--vocab-size", type=int, default=10000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-seconds", type=float, default=20.0)
    parser.add_argument("--valid-max-tokens", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu", help="for the throughput part (cpu or cuda)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--worker", choices=["build", "train"], help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    report: Dict[str, Any] = {"load_before": os.getloadavg(), "import_rss_mb": import_rss_mb(), "sizes": []}
    print(json.dumps({"import_rss_mb": report["import_rss_mb"]}), flush=True)
    for words in (int(value) for value in args.words):
        corpus, cache, out = work / f"corpus-{words}.txt", work / f"cache-{words}", work / f"train-{words}"
        for folder in (cache, out):
            shutil.rmtree(folder, ignore_errors=True)
        entry: Dict[str, Any] = {"requested_words": words, "corpus": write_corpus(corpus, words)}
        common = dict(corpus=corpus, cache=cache, vocab_size=args.vocab_size)
        entry["build"] = run_worker("build", **common)
        entry["train"] = run_worker("train", out=out, hidden=args.hidden, threads=args.threads,
                                    train_seconds=args.train_seconds, valid_max_tokens=args.valid_max_tokens,
                                    **common)
        entry["load_after"] = os.getloadavg()
        report["sizes"].append(entry)
        print(json.dumps(entry), flush=True)
        if not args.keep:
            corpus.unlink()
            for folder in (cache, out):
                shutil.rmtree(folder, ignore_errors=True)
    report["throughput"] = throughput(args)
    report["load_after"] = os.getloadavg()
    print(json.dumps(report["throughput"]), flush=True)
    (work / "report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
