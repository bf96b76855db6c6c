"""Mutation fuzzing of every reader path, shared by tests/fuzz and bench/fuzz.py.

Seeds are real lattices (SLF, Kaldi text and binary, k2 ``.pt``; see ``make_seeds``). Each
fuzzed input is a seed with 1-3 mutations (byte flips, line drops and
duplications, field swaps, value replacements, truncation, gzip damage, k2
tensor edits), chosen by ``random.Random(f"{seed}:{index}")``, so input
``index`` of a campaign is reproducible from the two numbers alone.

``exercise`` is what one input goes through: ``rescorer.read_lattices`` and on
into pruning and history expansion (``run_algorithms``). Outcomes: ``parsed``
(read, and the algorithms finished or raised a ``RescorerError``), ``rejected``
(``RescorerError`` while reading), ``crashed`` (any other exception, a hang past
the time cap, or the worker dying). ``run_campaign`` runs inputs in worker
processes with a per-input time cap (``signal.alarm``) and an address-space cap
(``RLIMIT_AS``), and saves one reproducer per crash signature.
"""
import gzip
import hashlib
import io
import json
import multiprocessing
import random
import re
import resource
import signal
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

INTERESTING = ["4000000000", "100000000000", "1e25", str(2**63), str(2**64 + 7), "99999999999",
               "-1", "-4000000000", "nan", "inf", "-inf", "1e400", "0", "-0", "", "1.5", "00",
               "+3", "1_0", "0x10", "2147483648", "-2147483649", "9" * 40]
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


@dataclass(frozen=True)
class Seed:
    """One real input: ``kind`` is slf, kaldi (text or binary) or k2; ``words`` a words.txt path or None."""

    name: str
    kind: str
    data: bytes
    words: Optional[str]


def make_seeds(folder: Path, small: bool = False) -> List[Seed]:
    """The seeds, with the k2 and words files they need written under ``folder``.

    Args:
      folder:
        Where the k2 seeds and words.txt files go.
      small:
        Only the smallest seeds (for the test suite's time budget).
    """
    from rescorer.formats.k2_pt import write_k2
    from rescorer.formats.slf import read_slf, read_text
    from rescorer.lattice.symbols import SymbolTable

    folder.mkdir(parents=True, exist_ok=True)
    theanolm = DATA / "slf-samples" / "theanolm"
    slf_paths = [theanolm / "lattice.slf"]
    if not small:
        slf_paths += [DATA / "asr-dev" / "lat" / "dev-0028.slf.gz",
                      min((DATA / "slf-samples" / "ami").iterdir(), key=lambda p: p.stat().st_size)]
    seeds = [Seed(path.name, "slf", read_text(path).encode(), None) for path in slf_paths]
    theanolm_words = Path(__file__).resolve().parents[1] / "fixtures" / "theanolm_words.txt"
    seeds.append(Seed("theanolm.lat", "kaldi", (theanolm / "lattice.lat").read_bytes(),
                      str(theanolm_words)))
    ids = SymbolTable()
    for word_id in range(1, 200_001):
        ids.add(f"w{word_id}")
    ids.write(folder / "ids.txt")
    if not small:
        # the archive's one lattice (2,553 arcs), without its transition ids (1 MB -> 60 kB)
        archive = re.sub(r"(,[^,\s]*,)[0-9_]+", r"\1",
                         (DATA / "kaldi-samples" / "lat.txt.ark").read_text())
        seeds.append(Seed("kaldi-samples", "kaldi", archive.encode(), str(folder / "ids.txt")))
    seeds.append(_kaldi_binary_seed(folder))
    table = SymbolTable.from_file(theanolm_words)
    lattices = [read_slf(theanolm / "lattice.slf", table)[0][0]]
    write_k2(folder / "theanolm.pt", lattices)
    seeds.append(Seed("theanolm.pt", "k2", (folder / "theanolm.pt").read_bytes(), str(theanolm_words)))
    return seeds


def _kaldi_binary_seed(folder: Path) -> Seed:
    """The smallest lattice of the binary archive ``lat.1.ark`` (58 arcs), alone (5.7 kB)."""
    from rescorer.formats.kaldi_archive import iter_kaldi_archive
    from rescorer.formats.kaldi_outputs import write_kaldi_archive

    lattices = list(iter_kaldi_archive(DATA / "kaldi-samples" / "lat.1.ark"))
    smallest = min(lattices, key=lambda lattice: lattice.src.numel())
    write_kaldi_archive(f"ark:{folder / 'lat.1.ark'}", [smallest])
    return Seed("lat.1.ark", "kaldi", (folder / "lat.1.ark").read_bytes(), str(folder / "ids.txt"))


# --- mutations: bytes -> bytes, each given the random generator --------------------------

def flip_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] ^= rng.randint(1, 255)
    return bytes(out)


def drop_lines(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    for _ in range(rng.randint(1, 3)):
        if len(lines) > 1:
            del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def duplicate_lines(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    for _ in range(rng.randint(1, 3)):
        index = rng.randrange(len(lines))
        lines.insert(rng.randrange(len(lines) + 1), lines[index])
    return b"\n".join(lines)


def swap_fields(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    index = rng.randrange(len(lines))
    fields = lines[index].split()
    if len(fields) >= 2:
        a, b = rng.sample(range(len(fields)), 2)
        fields[a], fields[b] = fields[b], fields[a]
        lines[index] = b" ".join(fields)
    return b"\n".join(lines)


def replace_value(rng: random.Random, data: bytes) -> bytes:
    matches = list(_NUMBER.finditer(data, 0, min(len(data), 200_000)))
    if not matches:
        return data
    match = rng.choice(matches)
    return data[:match.start()] + rng.choice(INTERESTING).encode() + data[match.end():]


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[:rng.randrange(len(data) + 1)]


def damage_gzip(rng: random.Random, data: bytes) -> bytes:
    packed = gzip.compress(data, mtime=0)
    return rng.choice([flip_bytes, truncate])(rng, packed)


def edit_k2(rng: random.Random, data: bytes) -> bytes:
    """Change one tensor entry of a k2 file (or its ``utt_ids``) and save it again."""
    import torch

    try:
        content = torch.load(io.BytesIO(data), weights_only=True)
        arcs = content["arcs"]
    except Exception:  # an earlier mutation broke the file: leave it broken
        return data
    choice = rng.randrange(4)
    if choice == 0:
        arcs[rng.randrange(min(arcs.numel(), 16))] = rng.choice(
            [2**31 - 1, -2**31, -1, 0, 1, 10**6])  # the header: counts and splits
    elif choice == 1:
        arcs[rng.randrange(arcs.numel())] = rng.randint(-2**31, 2**31 - 1)
    elif choice == 2 and "lm_scores" in content:
        content["lm_scores"][rng.randrange(content["lm_scores"].numel())] = rng.choice(
            [float("nan"), float("inf"), -1e30])
    else:
        content["utt_ids"] = rng.choice([[], ["a", "a"], [""], ["x"] * 3])
    buffer = io.BytesIO()
    try:
        torch.save(content, buffer)
    except Exception:  # e.g. a flipped byte gave a tensor torch cannot save again
        return data
    return buffer.getvalue()


TEXT_MUTATIONS = [flip_bytes, drop_lines, duplicate_lines, swap_fields, replace_value,
                  replace_value, truncate]
K2_MUTATIONS = [edit_k2, edit_k2, flip_bytes, truncate]


def fuzzed_input(seeds: List[Seed], seed: int, index: int) -> Tuple[Seed, bytes, str, List[str]]:
    """Input ``index`` of campaign ``seed``: (its seed, bytes, file suffix, mutation names)."""
    rng = random.Random(f"{seed}:{index}")
    base = rng.choice(seeds)
    data, names = base.data, []
    mutations = K2_MUTATIONS if base.kind == "k2" else TEXT_MUTATIONS
    for _ in range(rng.randint(1, 3)):
        mutation = rng.choice(mutations)
        data = mutation(rng, data)
        names.append(mutation.__name__)
    suffix = ".pt" if base.kind == "k2" else ".txt"
    if base.kind != "k2" and rng.random() < 0.25:  # a gzipped file, intact or damaged
        gzipped = rng.random() < 0.5
        data = damage_gzip(rng, data) if gzipped else gzip.compress(data, mtime=0)
        names.append("damage_gzip" if gzipped else "gzip")
        suffix += ".gz"
    return base, data, suffix, names


# --- what one input goes through ---------------------------------------------------------

def run_algorithms(batch) -> None:
    """The steps after reading: beam pruning and K=2 history expansion of each lattice.

    The one place that names the algorithms, so it can be pointed at the batched engine.
    """
    from rescorer.algorithms.single import expand_histories
    from rescorer.algorithms.single import prune_by_beam
    from rescorer.algorithms.single import topological_levels

    for lattice in batch.to_lattices():
        scores = lattice.am_scores + lattice.ngram_scores
        pruned, _ = prune_by_beam(lattice, scores, 10.0, levels=topological_levels(lattice))
        expand_histories(pruned, pruned.word_splits, pruned.word_ids, window=2, bos_id=0,
                         eos_id=0, max_arcs=100_000)


_TABLES: Dict[str, object] = {}  # words.txt path -> its (frozen, never changed) table


def exercise(path: Path, words: Optional[str]) -> str:
    """``parsed`` or ``rejected``; any exception other than ``RescorerError`` propagates."""
    import rescorer
    from rescorer.errors import RescorerError
    from rescorer.lattice.symbols import SymbolTable

    if words is not None and words not in _TABLES:
        _TABLES[words] = SymbolTable.from_file(words)
    try:
        batch = rescorer.read_lattices([path], _TABLES[words] if words is not None else None)
    except RescorerError:
        return "rejected"
    try:
        run_algorithms(batch)
    except RescorerError:
        pass  # e.g. a cycle or no path: a clean rejection after parsing
    return "parsed"


# --- campaign ----------------------------------------------------------------------------

class InputTimeout(BaseException):
    """Raised by the alarm: not an ``Exception``, so no reader can swallow it."""


@dataclass
class Counts:
    """Campaign totals; ``crashes`` maps signature -> number of inputs."""

    tried: int = 0
    harness_errors: int = 0  # the mutation itself failed: the input was not tried
    parsed: int = 0
    rejected: int = 0
    crashed: int = 0
    hangs: int = 0
    crashes: Dict[str, int] = field(default_factory=dict)
    slowest_s: float = 0.0
    peak_rss_mb: float = 0.0


def signature(error: BaseException) -> str:
    """Exception type and its innermost frame inside rescorer/ (else the innermost)."""
    frames = traceback.extract_tb(error.__traceback__)
    inside = [f for f in frames if "/rescorer/" in f.filename] or frames[-1:]
    where = f"{Path(inside[-1].filename).name}:{inside[-1].lineno}" if inside else "?"
    return f"{type(error).__name__} at {where}"


def _worker(seeds: List[Seed], seed: int, indices: List[int], scratch: Path, time_cap: int,
            memory_cap_mb: int, results) -> None:
    """Run inputs ``indices`` and put one result dict per input on ``results``."""
    import torch

    torch.set_num_threads(1)
    import rescorer.formats.read  # noqa: F401  (import before capping memory)

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _vm_size() + memory_cap_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))

    def alarm(signum, frame):
        raise InputTimeout()

    signal.signal(signal.SIGALRM, alarm)
    for index in indices:
        try:
            base, data, suffix, names = fuzzed_input(seeds, seed, index)
        except Exception:  # a bug of the harness, not of the readers: count, go on
            results.put({"index": index, "outcome": "harness_error", "seconds": 0.0,
                         "rss_mb": 0.0, "traceback": traceback.format_exc()})
            continue
        path = scratch / f"input-{index}{suffix}"
        path.write_bytes(data)
        result = {"index": index, "seed_name": base.name, "mutations": names}
        began = time.perf_counter()
        signal.alarm(time_cap)
        try:
            result["outcome"] = exercise(path, base.words)
        except InputTimeout:
            result.update(outcome="hang", signature=f"hang over {time_cap} s")
        except Exception as error:  # everything else is a crash: that is what we count
            result.update(outcome="crashed", signature=signature(error),
                          traceback=traceback.format_exc())
        finally:
            signal.alarm(0)
        result["seconds"] = time.perf_counter() - began
        result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_rss
        path.unlink()
        results.put(result)


def _vm_size() -> int:
    """This process's virtual memory size in bytes (Linux ``/proc``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def run_campaign(seeds: List[Seed], count: int, seed: int, out: Path, jobs: int = 1,
                 time_cap: int = 10, memory_cap_mb: int = 1024,
                 progress: Optional[Callable[[Counts], None]] = None,
                 max_seconds: Optional[float] = None) -> Counts:
    """Fuzz inputs ``0 .. count-1`` in ``jobs`` worker processes; reproducers go to ``out/crashes``.

    A worker that dies (killed, out of memory in C) is replaced; the input it was
    on counts as a crash with signature "worker died". After ``max_seconds`` no
    new chunk of inputs is started (``tried`` then says how far it got).
    """
    context = multiprocessing.get_context("spawn")  # no fork of a process that ran torch
    scratch = out / "scratch"
    crashes_dir = out / "crashes"
    scratch.mkdir(parents=True, exist_ok=True)
    crashes_dir.mkdir(parents=True, exist_ok=True)
    counts = Counts()
    results = context.Queue()
    pending = list(range(count))
    chunk = max(1, min(500, -(-count // jobs)))
    stop_at = None if max_seconds is None else time.monotonic() + max_seconds
    running: Dict[int, Tuple[object, List[int], float]] = {}
    done = set()
    while pending or running:
        if stop_at is not None and time.monotonic() > stop_at:
            pending = []
        while pending and len(running) < jobs:
            indices, pending = pending[:chunk], pending[chunk:]
            process = context.Process(target=_worker, args=(seeds, seed, indices, scratch,
                                                            time_cap, memory_cap_mb, results))
            process.start()
            running[process.pid] = (process, indices, time.monotonic())
        try:
            result = results.get(timeout=1.0)
        except Exception:  # queue.Empty: check the workers
            result = None
        if result is not None:
            done.add(result["index"])
            _count(counts, result, seeds, seed, crashes_dir)
            for pid, (process, indices, _) in running.items():
                if result["index"] in indices:
                    running[pid] = (process, indices, time.monotonic())
            if progress is not None:
                progress(counts)
            continue
        for pid, (process, indices, last) in list(running.items()):
            stuck = time.monotonic() - last > 3 * time_cap + 30
            if process.is_alive() and not stuck:
                continue
            if stuck:
                process.kill()
            process.join()
            del running[pid]
            left = [index for index in indices if index not in done]
            if left and (process.exitcode != 0 or stuck):
                _count(counts, {"index": left[0], "outcome": "crashed", "seconds": 0.0,
                                "signature": f"worker died (exit {process.exitcode})",
                                "rss_mb": 0.0}, seeds, seed, crashes_dir)
                done.add(left[0])
                pending = left[1:] + pending
    return counts


def _count(counts: Counts, result: dict, seeds: List[Seed], seed: int, crashes_dir: Path) -> None:
    """Add one result; save the first reproducer of each crash signature."""
    outcome = result["outcome"]
    if outcome == "harness_error":
        counts.harness_errors += 1
        return
    counts.tried += 1
    counts.slowest_s = max(counts.slowest_s, result["seconds"])
    counts.peak_rss_mb = max(counts.peak_rss_mb, result["rss_mb"])
    if outcome in ("parsed", "rejected"):
        setattr(counts, outcome, getattr(counts, outcome) + 1)
        return
    counts.crashed += 1
    counts.hangs += outcome == "hang"
    name = result["signature"]
    counts.crashes[name] = counts.crashes.get(name, 0) + 1
    if counts.crashes[name] == 1:
        try:
            base, data, suffix, names = fuzzed_input(seeds, seed, result["index"])
        except Exception:  # cannot rebuild the input: keep the signature and traceback
            base, data, suffix, names = seeds[0], b"", ".unavailable", []
        stem = hashlib.sha1(name.encode()).hexdigest()[:10]
        (crashes_dir / f"{stem}{suffix}").write_bytes(data)
        (crashes_dir / f"{stem}.json").write_text(json.dumps(
            {"signature": name, "seed": seed, "index": result["index"], "seed_name": base.name,
             "mutations": names, "words": base.words,
             "traceback": result.get("traceback", "")}, indent=1) + "\n")


def counts_dict(counts: Counts) -> dict:
    """``counts`` as plain JSON-able data."""
    return asdict(counts)
