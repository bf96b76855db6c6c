"""CTM times of real Kaldi lattices: transition-id counts per arc, checked against a per-path count.

The reference is computed here from the Kaldi FST itself (no fprescore algorithm): the
cheapest path by a plain dynamic program, each word's frames counted along it. With a
posterior scale this large the consensus is that path with confidence 1, so the CTM must
hold its words at exactly those frames (times 0.01 s).
"""
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rescorer.cli.app import app
from rescorer.formats.kaldi_archive import iter_kaldi_archive
from rescorer.formats.kaldi_lattice import lattice_to_fst

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / ".." / "shared" / "data" / "kaldi-samples" / "lat.1.ark"
MODEL = ROOT / "lattices" / "demo-lm.pt"
pytestmark = pytest.mark.skipif(not SAMPLES.is_file(), reason="shared data not available")
ACOUSTIC_SCALE = 0.1


def best_path_words_and_frames(fst, acoustic_scale):
    """(word id, first frame, end frame) of each word along the cheapest path, in order."""
    arcs = defaultdict(list)
    indegree = [0] * fst.num_states
    frames = (fst.arc_tid_splits[1:] - fst.arc_tid_splits[:-1]).tolist()
    for src, dst, word, graph, acoustic, count in zip(fst.src.tolist(), fst.dst.tolist(),
                                                      fst.olabel.tolist(), fst.graph.tolist(),
                                                      fst.acoustic.tolist(), frames):
        arcs[src].append((dst, word, graph + acoustic_scale * acoustic, count))
        indegree[dst] += 1
    order, ready = [], [s for s in range(fst.num_states) if indegree[s] == 0]
    while ready:
        state = ready.pop()
        order.append(state)
        for dst, *_ in arcs[state]:
            indegree[dst] -= 1
            if indegree[dst] == 0:
                ready.append(dst)
    best = {fst.start: (0.0, [], 0)}  # state -> (cost, [(word, start, end)], frames so far)
    finished = []
    for state in order:
        if state not in best:
            continue
        cost, spans, count = best[state]
        if bool(fst.is_final[state]):
            final = float(fst.final_graph[state]) + acoustic_scale * float(fst.final_acoustic[state])
            finished.append((cost + final, spans))
        for dst, word, arc_cost, arc_frames in arcs[state]:
            span = [(word, count, count + arc_frames)] if word else []
            candidate = (cost + arc_cost, spans + span, count + arc_frames)
            if dst not in best or candidate[0] < best[dst][0]:
                best[dst] = candidate
    return min(finished)[1]


@pytest.fixture(scope="module")
def words(tmp_path_factory):
    """A placeholder words.txt: every id of the samples is word ``w<id>``."""
    top = max(int(lattice.word_ids.max()) for lattice in iter_kaldi_archive(SAMPLES))
    path = tmp_path_factory.mktemp("words") / "words.txt"
    path.write_text("<eps> 0\n" + "".join(f"w{i} {i}\n" for i in range(1, top + 1)))
    return path


def test_ctm_times_are_the_transition_counts_along_the_path(words, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "rescore", str(SAMPLES), "--words", str(words), "--model", str(MODEL), "--out", str(out),
        "--am-scale", str(ACOUSTIC_SCALE), "--lm-scale", "0", "--decode", "mbr", "--mbr-scale", "1000"])
    assert result.exit_code == 0, result.output
    lines = (out / "onebest.ctm").read_text().splitlines()
    lattices = list(iter_kaldi_archive(SAMPLES))
    expected = []
    for lattice in sorted(lattices, key=lambda lattice: lattice.utt_id):
        for word, start, end in best_path_words_and_frames(lattice_to_fst(lattice), ACOUSTIC_SCALE):
            expected.append(f"{lattice.utt_id} 1 {start * 0.01:.3f} {(end - start) * 0.01:.3f} w{word} 1.0000")
    assert len(expected) > 50
    assert lines == expected
