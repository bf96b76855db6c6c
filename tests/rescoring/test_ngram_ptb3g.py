"""``--ngram-source arpa`` on real asr-dev-ptb3g lattices: the exact trigram first pass.

Score = a + 9.5 ln P_arpa + wdpenalty per word (the set's README: the decoder's own
bestpath score). The issue asked for 1-best == decoder ``onebest`` in >= 230/240; an exact
search cannot give that (docs/results/ngram.md: 196/240 at beam 40 over all 240, and in
32 of the 44 misses our path scores *higher* than the decoder's own ``onebest_path``, which
pocketsphinx's one-history-per-link bestpath missed). The README's 233/240 is that
approximate recursion's: re-implemented on our reader and scorer (``ps_bestpath.py``) it
gives 233/240 too. What must hold, and is tested:

- no search error: wherever the decoder's path survives the first-pass beam, our 1-best
  scores at least as high as it under the same exact formula;
- every 1-best's ``arpa`` equals the ARPA sentence log-prob (and pocketsphinx's, to its
  quantization);
- agreement with the decoder on this subset is at least what was measured;
- pocketsphinx's recursion agrees with the decoder in >= 47/48 here, and our exact 1-best
  scores at least as high as the recursion's path wherever that path survives the beam.
"""
import json
import math
import sys
from pathlib import Path

import pytest
import torch

from rescorer.algorithms.prune import prune_by_beam
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.formats.slf import read_slf
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.symbols import SymbolTable
from rescorer.ngram.cache import load_ngram
from rescorer.outputs.text import read_transcripts
from rescorer.rescoring.combine import Scales
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.pipeline import run_rescore
from rescorer.threads import torch_threads

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ps_bestpath import ps_bestpath  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "asr-dev-ptb3g"
LMSCALE, WDPENALTY, BEAM = 9.5, -0.629606, 40.0
SUBSET = slice(0, 240, 5)  # 48 utterances, every voice and noise level (they cycle by 4 and 3)
MEASURED_AGREEMENT = 41  # of these 48 at beam 40 (docs/results/ngram.md); all 240: 196
RECURSION_AGREEMENT = 47  # of these 48 by pocketsphinx's recursion (ps_bestpath; dev-0176 a 0.02 tie); all 240: 233
ARPA = DATA / "lm" / "ptbvalid-3g.arpa"
PS_TOLERANCE = 5e-4  # nats per word: pocketsphinx stores quantized log-probs


def exact_total(ngram, am, words):
    """The set's score of a path, as the pipeline's ``total``: am + 9.5 ln P + wdpenalty per word."""
    ids = [t for w in words for t in ngram.vocabulary.encode_word(w)]
    return am + LMSCALE * float(ngram.sentence_log_probs([ids])[0]) + WDPENALTY * len(words)


def in_beam(lattice, arcs, beam):
    """Whether the path ``arcs`` survives the exact pass's first-pass pruning at ``beam``."""
    batch = LatticeBatch.from_lattices([lattice])
    _, kept = prune_by_beam(LevelSchedule.of(batch), batch.am_scores.double() +
                            batch.ngram_scores.double(), beam)
    return bool(torch.isin(arcs, kept).all())


@pytest.fixture(scope="module")
def exact_run(tmp_path_factory):
    """Our exact first pass on SUBSET: (lattice files, 1-best rows of nbest.jsonl by uttid)."""
    if not DATA.is_dir():
        pytest.skip("../shared/data/asr-dev-ptb3g not available")
    files = sorted((DATA / "lat").glob("*.slf.gz"))[SUBSET]
    out = tmp_path_factory.mktemp("exact") / "out"
    config = RescoreConfig(
        lattices=files, model=REPO / "lattices" / "demo-lm.pt", out=str(out), nbest=1,
        scales=Scales(ngram=LMSCALE, lm=0.0, word_penalty=WDPENALTY), beam=BEAM,
        ngram_lm=ARPA, ngram_source="arpa")
    report = run_rescore(config)
    assert not report.failures and len(report.results) == len(files)
    ours = {h["uttid"]: h for h in map(json.loads, (out / "nbest.jsonl").read_text().splitlines())}
    for utt, stats in report.results.items():  # the beam each was pruned with (halved per retry)
        ours[utt]["beam"] = BEAM / 2 ** stats.tightened
    return files, ours


@pytest.mark.slow
def test_exact_arpa_first_pass_has_no_search_error(exact_run):
    files, ours = exact_run
    decoder = read_transcripts(DATA / "onebest")
    paths = {line.split()[0]: [int(x) for x in line.split()[1:]]
             for line in (DATA / "onebest_path").read_text().splitlines()}
    ngram = load_ngram(ARPA)
    pocketsphinx = pytest.importorskip("pocketsphinx")
    ps_model = pocketsphinx.NGramModel.readfile(str(ARPA))

    def exact(am, words):
        return exact_total(ngram, am, words)

    agree, checked, symbols = 0, 0, SymbolTable()
    for path in files:
        (lattice,), symbols = read_slf(path, symbols)
        utt, hyp = lattice.utt_id, ours[lattice.utt_id]
        mine = exact(hyp["am"], hyp["words"])
        assert hyp["total"] == pytest.approx(mine, abs=1e-6), utt
        history, ps_total = ["<s>"], 0.0
        for word in hyp["words"] + ["</s>"]:
            ps_total += ps_model.prob([word] + history[::-1][:2]) * math.log(1.0001)
            history.append(word)
        assert abs(hyp["arpa"] - ps_total) <= PS_TOLERANCE * (len(hyp["words"]) + 1), utt
        agree += hyp["words"] == decoder[utt]
        arcs = torch.tensor(paths[utt], dtype=torch.int64)
        if in_beam(lattice, arcs, hyp["beam"]):  # the decoder's path is in the pruned lattice
            checked += 1
            theirs = exact(float(lattice.am_scores.double()[arcs].sum()), decoder[utt])
            assert mine >= theirs - 1e-6, (utt, mine, theirs)
    assert agree >= MEASURED_AGREEMENT
    assert checked >= 46  # measured: the decoder's path survives the beam in 46 of the 48


@pytest.mark.slow
def test_pocketsphinx_recursion_reproduces_the_decoder_and_exact_search_is_not_worse(exact_run):
    """The README's 233/240 is pocketsphinx's approximate recursion: our reader and ARPA
    scorer reproduce it (tests/rescoring/ps_bestpath.py, on the unpruned lattices), and our
    exact search scores at least as high as the recursion's path wherever that path
    survives the exact pass's beam (docs/results/ngram.md: all 240 measured)."""
    files, ours = exact_run
    ngram = load_ngram(ARPA)
    symbols, lattices = SymbolTable(), []
    for path in files:
        (lattice,), symbols = read_slf(path, symbols)
        lattices.append(lattice)
    with torch_threads(1):  # many small ops: 2 threads on a loaded 2-core machine took 18x longer
        found = ps_bestpath(LatticeBatch.from_lattices(lattices), symbols, ngram, LMSCALE, WDPENALTY)
    decoder = read_transcripts(DATA / "onebest")
    agree, checked = 0, 0
    for index, lattice in enumerate(lattices):
        utt, words, arcs = lattice.utt_id, found.words[index], found.arcs[index]
        agree += words == decoder[utt]
        theirs = exact_total(ngram, float(lattice.am_scores.double()[arcs].sum()), words)
        # the recursion's own score is its path's exact score (the end link's penalty aside)
        assert float(found.scores[index]) - WDPENALTY == pytest.approx(theirs, abs=1e-6), utt
        if in_beam(lattice, arcs, ours[utt]["beam"]):
            checked += 1
            assert ours[utt]["total"] >= theirs - 1e-6, (utt, ours[utt]["total"], theirs)
    assert agree >= RECURSION_AGREEMENT
    assert checked >= 46  # measured: the recursion's path is outside the beam in dev-0141, dev-0201
