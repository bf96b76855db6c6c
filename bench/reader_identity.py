"""Check that today's readers give exactly the batches of a baseline revision's readers.

Usage: .venv/bin/python bench/reader_identity.py [--baseline 5100d1f]

For each shared data set (asr-dev, asr-dev-ptb3g, slf-samples: SLF; kaldi-samples:
binary and text Kaldi archives, plus a text archive of 20 copies of every sample
written by fprescore) both the baseline's code (``git archive REV rescorer``) and
the working tree's run ``rescorer.read_batch`` in a subprocess (one growing table
for SLF, a placeholder words.txt for Kaldi) and save every tensor of the batch,
the utterance ids, the failures and the table. The two are compared tensor by
tensor with ``torch.equal`` and equal dtypes (so floats bit for bit).
``state_times`` is compared only when the baseline has it (it came with the new
SLF reader). Exit code 1 on a difference.
"""
import argparse
from dataclasses import replace
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
SLF_SETS = ["asr-dev/lat", "asr-dev-ptb3g/lat", "slf-samples/ami", "slf-samples/theanolm/lattice.slf"]
KALDI = DATA / "kaldi-samples"

CHILD = r"""
import sys, torch
sys.path.insert(0, sys.argv[1])
from rescorer.formats.read import read_batch
from rescorer.lattice.symbols import SymbolTable
words = SymbolTable.from_file(sys.argv[3]) if sys.argv[3] else SymbolTable()
result = read_batch(sys.argv[4:], words)
batch = result.batch
fields = {name: getattr(batch, name) for name in (
    "state_splits", "arc_splits", "src", "dst", "labels", "word_splits", "word_ids", "am_scores",
    "ngram_scores", "transition_splits", "transition_ids", "state_times")
    if getattr(batch, name, None) is not None}
torch.save({"fields": fields, "extras": dict(batch.arc_extras), "utt_ids": batch.utt_ids,
            "failures": [str(failure.error) for failure in result.failures],
            "table": list(result.symbols)}, sys.argv[2])
"""


def read_with(code: Path, out: Path, words: str, paths) -> dict:
    subprocess.run([sys.executable, "-c", CHILD, str(code), str(out), words, *map(str, paths)],
                   check=True)
    return torch.load(out)


def files_of(entry: str):
    path = DATA / entry
    return sorted(path.iterdir()) if path.is_dir() else [path]


def kaldi_inputs(folder: Path):
    """The sample archives, and a text archive of 20 copies of every sample, and words.txt."""
    sys.path.insert(0, str(ROOT))
    from rescorer.formats.kaldi_archive import iter_kaldi_archive
    from rescorer.formats.kaldi_outputs import write_kaldi_archive

    originals = list(iter_kaldi_archive(KALDI / "lat.1.ark")) + list(iter_kaldi_archive(KALDI / "lat.txt.ark"))
    copies = []
    for copy in range(20):
        for lattice in originals:
            copies.append(replace(lattice, utt_id=f"{lattice.utt_id}-{copy}"))
    write_kaldi_archive(f"ark,t:{folder / 'copies.txt'}", copies)
    top = max(int(lattice.word_ids.max()) for lattice in originals if lattice.word_ids.numel())
    words = folder / "words.txt"
    words.write_text("<eps> 0\n" + "".join(f"w{i} {i}\n" for i in range(1, top + 1)))
    return words, [KALDI / "lat.1.ark", KALDI / "lat.txt.ark", folder / "copies.txt"]


def compare(name: str, old: dict, new: dict) -> bool:
    problems = []
    for key in ("utt_ids", "failures", "table"):
        if old[key] != new[key]:
            problems.append(key)
    for group in ("fields", "extras"):
        for key, value in old[group].items():
            other = new[group].get(key)
            if other is None or other.dtype != value.dtype or not torch.equal(other, value):
                problems.append(f"{group}.{key}")
    extra = sorted(set(new["fields"]) - set(old["fields"]))
    arcs = int(new["fields"]["arc_splits"][-1])
    print(f"{name}: {len(new['utt_ids'])} lattices, {arcs:,} arcs, {len(new['failures'])} failures: "
          + ("identical" if not problems else f"DIFFERENT in {', '.join(problems)}")
          + (f" (new fields: {', '.join(extra)})" if extra else ""))
    return not problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="5100d1f", help="git revision of the old readers")
    args = parser.parse_args()
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        old_code = folder / "baseline"
        old_code.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "rescorer"],
                                 check=True, capture_output=True).stdout
        (folder / "old.tar").write_bytes(archive)
        with tarfile.open(folder / "old.tar") as tar:
            tar.extractall(old_code)
        words, kaldi_paths = kaldi_inputs(folder)
        sets = [(entry, "", files_of(entry)) for entry in SLF_SETS]
        sets.append(("kaldi-samples + 20 text copies", str(words), kaldi_paths))
        for name, table, paths in sets:
            old = read_with(old_code, folder / "old.pt", table, paths)
            new = read_with(ROOT, folder / "new.pt", table, paths)
            same &= compare(name, old, new)
    print(f"baseline {args.baseline}: " + ("all identical" if same else "DIFFERENCES"))
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
