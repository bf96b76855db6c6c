"""Check that today's readers give exactly the lattices of a baseline revision's readers.

Usage: .venv/bin/python bench/reader_identity.py [--baseline 0ddfc3c]

Reads every shared SLF file (asr-dev, asr-dev-ptb3g, slf-samples) with the baseline's
``read_slf`` (``git archive REV rescorer``, in a subprocess) into one k2 file plus the
grown words.txt, then with ``rescorer.read_lattices`` (one batch per data set, one growing
table, since the data sets reuse utterance ids), and compares the two k2 dicts entry by
entry (``torch.equal``) and the words.txt texts byte for byte. Exit code 1 on a difference.
"""
import argparse
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
SETS = ["asr-dev/lat", "slf-samples/ami", "slf-samples/theanolm/lattice.slf", "asr-dev-ptb3g/lat"]

BASELINE = r"""
import sys
sys.path.insert(0, sys.argv[1])
from rescorer.formats.k2_pt import write_k2
from rescorer.formats.slf import read_slf
from rescorer.lattice.symbols import SymbolTable
table = SymbolTable()
lattices = [read_slf(path, table)[0][0] for path in sys.argv[4:]]
write_k2(sys.argv[2], lattices)
table.write(sys.argv[3])
"""


def files_of(entry: str):
    path = DATA / entry
    return sorted(path.iterdir()) if path.is_dir() else [path]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="0ddfc3c")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import rescorer
    from rescorer.formats.read import concat_batches
    from rescorer.formats.torch_pickle import load_torch_dict
    from rescorer.lattice.symbols import SymbolTable

    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "baseline"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "rescorer"],
                                 check=True, capture_output=True).stdout
        (Path(tmp) / "old.tar").write_bytes(archive)
        with tarfile.open(Path(tmp) / "old.tar") as tar:
            tar.extractall(old)
        groups = [files_of(entry) for entry in SETS]
        everything = [str(path) for group in groups for path in group]
        subprocess.run([sys.executable, "-c", BASELINE, str(old), f"{tmp}/old.pt",
                        f"{tmp}/old.txt", *everything], check=True)
        expected = load_torch_dict(f"{tmp}/old.pt")
        expected_words = Path(f"{tmp}/old.txt").read_text()
    table = SymbolTable()
    batch = concat_batches([rescorer.read_lattices(group, table) for group in groups])
    got = batch.to_k2_dict()
    problems = [key for key in ("arcs", "lm_scores") if not torch.equal(got[key], expected[key])]
    if got["utt_ids"] != expected["utt_ids"]:
        problems.append("utt_ids")
    ours, theirs = got.get("aux_labels"), expected.get("aux_labels")
    if (ours is None) != (theirs is None) or (ours is not None and not all(
            torch.equal(a, b) for a, b in zip(getattr(ours, "state", (ours,))[::2],
                                              getattr(theirs, "state", (theirs,))[::2]))):
        problems.append("aux_labels")
    if table.to_text() != expected_words:
        problems.append("words.txt")
    print(f"{len(everything)} files, {batch.num_utts} lattices, {batch.num_arcs:,} arcs: "
          + ("identical to " + args.baseline if not problems else f"DIFFERENT in {problems}"))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
