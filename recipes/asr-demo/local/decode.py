#!/usr/bin/env python3
"""Decode wav files with pocketsphinx and write SLF lattices (stage 3 of asr-demo).

Follows ``shared/data/asr-dev/README.md`` ("Decoder"): pocketsphinx 5.1.1
defaults (en-us acoustic model, cmudict-en-us.dict, en-us.lm.bin trigram),
and for every utterance ``start_stream()`` (resets the noise-removal
statistics so results do not depend on decoding order), ``start_utt()``,
``process_raw(full_utt=True)``, ``end_utt()``, ``hyp()``, ``get_lattice()``.
The raw lattice is post-processed by ``slf_postprocess`` and gzipped.

Writes ``lat/UTTID.slf.gz``, ``onebest`` (the decoder's ``hyp()``, Kaldi
text) and ``decode.tsv`` (per-utterance timing and lattice sizes).
"""
import argparse
import gzip
import math
import multiprocessing
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Dict, List, Tuple

import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import slf_postprocess  # noqa: E402

LOG_BASE = math.log(1.0001)  # pocketsphinx's internal log base, to natural log
_WORKER: Dict[str, object] = {}


def _start_worker(min_posterior: float) -> None:
    """Load one decoder and one LM per worker process."""
    import pocketsphinx

    warnings.simplefilter("ignore", DeprecationWarning)  # start_stream() is deprecated
    model_dir = Path(pocketsphinx.get_model_path()) / "en-us"
    _WORKER["decoder"] = pocketsphinx.Decoder(samprate=16000, loglevel="ERROR")
    _WORKER["lm"] = pocketsphinx.NGramModel.readfile(str(model_dir / "en-us.lm.bin"))
    _WORKER["min_posterior"] = min_posterior
    _WORKER["cache"] = {}


def _log_prob(word: str, history: Tuple[str, ...]) -> float:
    """ln P(word | history) from the first-pass trigram (history oldest first)."""
    cache = _WORKER["cache"]
    key = (word, *history[-2:])
    if key not in cache:
        cache[key] = _WORKER["lm"].prob([word, *reversed(history[-2:])]) * LOG_BASE
    return cache[key]


def decode_one(job: Tuple[str, str, str]) -> Tuple[str, str, Dict[str, float]]:
    """Decode one wav; write its SLF. Returns (utt_id, 1-best text, statistics)."""
    utt_id, wav, out_path = job
    decoder = _WORKER["decoder"]
    audio, _ = soundfile.read(wav, dtype="int16")
    began = time.perf_counter()
    decoder.start_stream()
    decoder.start_utt()
    decoder.process_raw(audio.tobytes(), full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    text = hypothesis.hypstr if hypothesis is not None else ""
    decode_seconds = time.perf_counter() - began
    segments = [(segment.word, segment.start_frame) for segment in decoder.seg()]
    with tempfile.NamedTemporaryFile(suffix=".slf") as raw_file:
        decoder.get_lattice().write_htk(raw_file.name)
        raw = slf_postprocess.parse_htk(Path(raw_file.name).read_text(encoding="utf-8"))
    path = slf_postprocess.decoder_path_links(raw, segments)
    cleaned = slf_postprocess.clean(raw, _log_prob, _WORKER["min_posterior"], path or ())
    slf = slf_postprocess.format_slf(
        cleaned, utt_id, "pocketsphinx 5.1.1 lattice, post-processed by "
        "recipes/asr-demo/local/slf_postprocess.py (see its docstring).",
    )
    with gzip.open(out_path, "wt", encoding="utf-8") as handle:
        handle.write(slf)
    stats = {
        "decode_s": decode_seconds, "total_s": time.perf_counter() - began,
        "raw_links": len(raw.sources), "links": len(cleaned.sources),
        "path_found": float(path is not None), "duration_s": len(audio) / 16000,
    }
    return utt_id, text, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="holds text and wav/")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--nj", type=int, default=2)
    parser.add_argument("--min-posterior", type=float, default=1e-6,
                        help="prune links with p below this (0: no pruning); "
                        "the decoder's 1-best path is always kept")
    args = parser.parse_args()

    utt_ids = [line.split(" ", 1)[0] for line in
               (args.data_dir / "text").read_text(encoding="utf-8").splitlines()]
    lat_dir = args.out_dir / "lat"
    lat_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(u, str(args.data_dir / "wav" / f"{u}.wav"), str(lat_dir / f"{u}.slf.gz"))
            for u in utt_ids]
    results: List[Tuple[str, str, Dict[str, float]]] = []
    began = time.perf_counter()
    with multiprocessing.Pool(args.nj, _start_worker, (args.min_posterior,)) as pool:
        for index, result in enumerate(pool.imap(decode_one, jobs), start=1):
            results.append(result)
            print(f"\r[decode] {index}/{len(jobs)} {result[0]}", end="", file=sys.stderr)
    print(file=sys.stderr)
    (args.out_dir / "onebest").write_text(
        "".join(f"{u} {text}\n" for u, text, _ in results), encoding="utf-8")
    keys = list(results[0][2])
    rows = ["uttid\t" + "\t".join(keys)]
    rows += [u + "\t" + "\t".join(f"{s[k]:.3f}" for k in keys) for u, _, s in results]
    (args.out_dir / "decode.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    audio = sum(s["duration_s"] for _, _, s in results)
    decode = sum(s["decode_s"] for _, _, s in results)
    found = sum(int(s["path_found"]) for _, _, s in results)
    print(f"decoded {len(results)} utterances ({audio:.1f} s audio) in "
          f"{time.perf_counter() - began:.1f} s wall; decode CPU {decode:.1f} s "
          f"(RTF {decode / audio:.2f}); decoder path kept in {found}/{len(results)}")


if __name__ == "__main__":
    main()
