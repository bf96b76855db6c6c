"""Rescoring real Kaldi lattices end to end, and the Kaldi outputs checked against Kaldi's conventions.

"Kaldi's best path" is computed here independently of fprescore's algorithms: a plain
Python dynamic program over the Kaldi FST (states, per-state final weights), minimising
``graph + acoustic_scale * acoustic`` as ``lattice-best-path --acoustic-scale`` does. The
same path checks the MBR CTM: with a huge posterior scale the consensus is that path with
confidence 1, so the CTM holds its words at exactly their frames (times 0.01 s).
"""
import json
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


def kaldi_best_path(fst, acoustic_scale):
    """(cost, word ids, frames, word spans) of the cheapest path: Kahn's order, then relaxation,
    in float64.

    Frames are the transition ids along the path (one per frame in a CompactLattice); each
    span is (word id, first frame, end frame).
    """
    arcs = defaultdict(list)
    indegree = [0] * fst.num_states
    frames = (fst.arc_tid_splits[1:] - fst.arc_tid_splits[:-1]).tolist()
    final_frames = (fst.final_tid_splits[1:] - fst.final_tid_splits[:-1]).tolist()
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
    best = {fst.start: (0.0, [], 0)}
    finished = []
    for state in order:
        if state not in best:
            continue
        cost, spans, count = best[state]
        if bool(fst.is_final[state]):
            final = float(fst.final_graph[state]) + acoustic_scale * float(fst.final_acoustic[state])
            finished.append((cost + final, spans, count + final_frames[state]))
        for dst, word, arc_cost, arc_frames in arcs[state]:
            span = [(word, count, count + arc_frames)] if word else []
            candidate = (cost + arc_cost, spans + span, count + arc_frames)
            if dst not in best or candidate[0] < best[dst][0]:
                best[dst] = candidate
    cost, spans, frames = min(finished)
    return cost, [word for word, _, _ in spans], frames, spans


@pytest.fixture(scope="module")
def words(tmp_path_factory):
    """A placeholder words.txt: every id of the samples is word ``w<id>``."""
    top = max(int(lattice.word_ids.max()) for lattice in iter_kaldi_archive(SAMPLES))
    path = tmp_path_factory.mktemp("words") / "words.txt"
    path.write_text("<eps> 0\n" + "".join(f"w{i} {i}\n" for i in range(1, top + 1)))
    return path


def rescore(words, out, *extra):
    result = CliRunner().invoke(app, [
        "rescore", str(SAMPLES), "--words", str(words), "--model", str(MODEL), "--out", str(out),
        "--am-scale", str(ACOUSTIC_SCALE), *extra])
    assert result.exit_code == 0, result.output
    return {line.split()[0]: line.split()[1:] for line in (out / "onebest.txt").read_text().splitlines()}


def test_lm_weight_zero_gives_kaldis_own_best_path(words, tmp_path):
    onebest = rescore(words, tmp_path / "out", "--lm-scale", "0")
    lattices = list(iter_kaldi_archive(SAMPLES))
    assert sorted(onebest) == sorted(lattice.utt_id for lattice in lattices)
    for lattice in lattices:
        _, ids, _, _ = kaldi_best_path(lattice_to_fst(lattice), ACOUSTIC_SCALE)
        assert onebest[lattice.utt_id] == [f"w{i}" for i in ids], lattice.utt_id
    # the scale matters: at acoustic scale 1, 9 of the 10 best paths are other ones
    unscaled = [kaldi_best_path(lattice_to_fst(lattice), 1.0)[1] for lattice in lattices]
    assert sum(onebest[lat.utt_id] != [f"w{i}" for i in ids]
               for lat, ids in zip(lattices, unscaled)) == 9


def test_rescored_kaldi_outputs_follow_kaldis_conventions(words, tmp_path):
    out = tmp_path / "out"
    onebest = rescore(words, out, "--lm-scale", "1.5", "--word-penalty", "-0.5",
                      "--kaldi-lattices", f"ark:{out / 'lat.1.gz'}", "--kaldi-nbest")
    # lattice-best-path --acoustic-scale=AM_SCALE on the written lattices = fprescore's 1-best
    written = list(iter_kaldi_archive(out / "lat.1.gz"))
    assert len(written) == 10
    first = {lat.utt_id: kaldi_best_path(lattice_to_fst(lat), ACOUSTIC_SCALE)
             for lat in iter_kaldi_archive(SAMPLES)}
    first_pass = {utt: [f"w{i}" for i in found[1]] for utt, found in first.items()}
    assert sum(onebest[utt] != words for utt, words in first_pass.items()) == 1  # rescoring moved one
    for lattice in written:
        _, ids, frames, _ = kaldi_best_path(lattice_to_fst(lattice), ACOUSTIC_SCALE)
        assert onebest[lattice.utt_id] == [f"w{i}" for i in ids], lattice.utt_id
        # transition ids came through expansion: one per frame on every path, as read
        assert frames == first[lattice.utt_id][2] > 100
    # nbest-to-linear style: keys UTTID-N, lm_cost + am_scale * ac_cost = -total
    hypotheses = [json.loads(line) for line in (out / "nbest.jsonl").read_text().splitlines()]
    costs = {name: dict(line.split() for line in (out / name).read_text().splitlines())
             for name in ("lm_cost", "ac_cost")}
    nbest = {line.split()[0]: line.split()[1:] for line in (out / "nbest.txt").read_text().splitlines()}
    assert len(nbest) == len(hypotheses) > 10
    for hyp in hypotheses:
        key = f"{hyp['uttid']}-{hyp['rank']}"
        assert nbest[key] == hyp["words"]
        assert float(costs["ac_cost"][key]) == -hyp["am"]
        total = float(costs["lm_cost"][key]) + ACOUSTIC_SCALE * float(costs["ac_cost"][key])
        assert total == pytest.approx(-hyp["total"], abs=1e-6)


@pytest.mark.parametrize("extra, message", [
    (["--kaldi-lattices", "ark,zz:lat.ark"], "unknown option 'zz'"),
    (["--kaldi-lattices", "scp:lat.scp"], "lattices are written to archives (expected ark:...)"),
    (["--kaldi-lattices", "ark:lat.ark", "--mode", "nbest"], "it needs --mode lattice"),
])
def test_bad_kaldi_output_options_fail_before_any_work(words, tmp_path, extra, message):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["rescore", str(SAMPLES), "--words", str(words), "--model",
                                      str(MODEL), "--out", str(out), *extra])
    assert result.exit_code == 1 and message in " ".join(result.output.split())
    assert not out.exists()


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
        for word, start, end in kaldi_best_path(lattice_to_fst(lattice), ACOUSTIC_SCALE)[3]:
            expected.append(f"{lattice.utt_id} 1 {start * 0.01:.3f} {(end - start) * 0.01:.3f} w{word} 1.0000")
    assert len(expected) > 50
    assert lines == expected
