"""The asr-dev pocketsphinx lattices: our SLF scores reproduce the decoder's numbers.

README (asr-dev): path score = sum of a + lmscale*l + wdpenalty*[E real word or end];
plain Viterbi with these fixed scores gives the decoder's 1-best word string in 127/240.
"""
import gzip
from pathlib import Path
from typing import Dict, List

import pytest
import torch

from rescorer.formats.slf import read_slf
from rescorer.lattice.fsavec import Lattice
from rescorer.lattice.symbols import SymbolTable

DEV = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "asr-dev"
pytestmark = pytest.mark.skipif(not DEV.is_dir(), reason="asr-dev data not available")


def table(name: str) -> Dict[str, List[str]]:
    lines = (DEV / name).read_text().splitlines()
    return {line.split()[0]: line.split()[1:] for line in lines if line.strip()}


def viterbi(lattice: Lattice, scores: torch.Tensor) -> List[int]:
    """Best path's arc ids (ties: the smallest arc id); asr-dev states are topologically
    numbered (src < dst), so arcs taken in order of dst see final scores at their source."""
    assert bool((lattice.src < lattice.dst).all())
    src, dst, score = lattice.src.tolist(), lattice.dst.tolist(), scores.double().tolist()
    best = [float("-inf")] * lattice.num_states
    best[0] = 0.0
    back = [-1] * lattice.num_states
    for arc in sorted(range(len(src)), key=dst.__getitem__):
        candidate = best[src[arc]] + score[arc]
        if candidate > best[dst[arc]]:
            best[dst[arc]], back[dst[arc]] = candidate, arc
    arcs, state = [], lattice.num_states - 1
    while state != 0:
        arcs.append(back[state])
        state = src[back[state]]
    return arcs[::-1]


def raw_path_score(path: Path, link_ids: List[int]) -> float:
    """a + lmscale*l + wdpenalty*[E is a real word or the end node], from the file text
    (only the header, the path's links and the nodes they enter are parsed)."""
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    fields = lambda line: dict(t.split("=", 1) for t in line.split() if "=" in t)
    first_node = next(n for n, line in enumerate(lines) if line.startswith("I="))
    header = {k: v for line in lines[:first_node] if not line.startswith("#")
              for k, v in fields(line).items()}
    by_id = {line.split(None, 1)[0]: line for line in lines[first_node:]}  # "I=3", "J=7"
    lmscale, penalty, end = float(header["lmscale"]), float(header["wdpenalty"]), header["end"]
    total = 0.0
    for link_id in link_ids:
        link = fields(by_id[f"J={link_id}"])
        word = fields(by_id[f"I={link['E']}"])["W"]
        real = word not in ("!NULL", "!SENT_START", "!SENT_END")
        total += float(link["a"]) + lmscale * float(link["l"])
        total += penalty if real or link["E"] == end else 0.0
    return total


def check(utt_ids: List[str]) -> int:
    """Assert path-score equality for each utterance; return how many Viterbi 1-bests match."""
    paths, onebest = table("onebest_path"), table("onebest")
    agree = 0
    for utt_id in utt_ids:
        path = DEV / "lat" / f"{utt_id}.slf.gz"
        (lattice,), symbols = read_slf(path, SymbolTable())
        scores = lattice.am_scores.double() + lattice.ngram_scores.double()
        link_ids = [int(j) for j in paths[utt_id]]
        # link J is arc J (file order); the decoder's path runs from start to the final state
        assert int(lattice.src[link_ids[0]]) == 0 and int(lattice.dst[link_ids[-1]]) == \
            lattice.num_states - 1
        assert lattice.dst[link_ids[:-1]].tolist() == lattice.src[link_ids[1:]].tolist()
        ours = float(scores[link_ids].sum())
        assert ours == pytest.approx(raw_path_score(path, link_ids), abs=1e-2), utt_id
        best = viterbi(lattice, scores)
        assert float(scores[best].sum()) >= ours - 1e-3  # Viterbi is at least the decoder's path
        words = [symbols.word(w) for arc in best for w in lattice.arc_words(arc)]
        agree += words == onebest[utt_id]
    return agree


def test_first_utterances_reproduce_the_decoder_path_scores():
    assert check([f"dev-{k:04d}" for k in range(1, 7)]) >= 1


@pytest.mark.slow
@pytest.mark.slow  # about 30 s on 2 cores: the whole dev set, the real-data proof of the reader
def test_all_240_viterbi_agreement_matches_the_readme():
    utt_ids = sorted(table("onebest_path"))
    assert len(utt_ids) == 240
    assert check(utt_ids) == 127
