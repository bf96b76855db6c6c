"""``--ngram-source arpa`` on real asr-dev-ptb3g lattices: the exact trigram first pass.

Score = a + 9.5 ln P_arpa + wdpenalty per word (the set's README: the decoder's own
bestpath score). The issue asked for 1-best == decoder ``onebest`` in >= 230/240; an exact
search cannot give that (docs/results/ngram.md: 196/240 at beam 40 over all 240, and in
32 of the 44 misses our path scores *higher* than the decoder's own ``onebest_path``, which
pocketsphinx's one-history-per-link bestpath missed). What must hold, and is tested:

- no search error: wherever the decoder's path survives the first-pass beam, our 1-best
  scores at least as high as it under the same exact formula;
- every 1-best's ``arpa`` equals the ARPA sentence log-prob (and pocketsphinx's, to its
  quantization);
- agreement with the decoder on this subset is at least what was measured.
"""
import json
import math
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

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "asr-dev-ptb3g"
LMSCALE, WDPENALTY, BEAM = 9.5, -0.629606, 40.0
SUBSET = slice(0, 240, 5)  # 48 utterances, every voice and noise level (they cycle by 4 and 3)
MEASURED_AGREEMENT = 41  # of these 48 at beam 40 (docs/results/ngram.md); all 240: 196
PS_TOLERANCE = 5e-4  # nats per word: pocketsphinx stores quantized log-probs


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/asr-dev-ptb3g not available")
def test_exact_arpa_first_pass_has_no_search_error(tmp_path):
    files = sorted((DATA / "lat").glob("*.slf.gz"))[SUBSET]
    arpa = DATA / "lm" / "ptbvalid-3g.arpa"
    config = RescoreConfig(
        lattices=files, model=REPO / "lattices" / "demo-lm.pt", out=str(tmp_path / "out"), nbest=1,
        scales=Scales(ngram=LMSCALE, lm=0.0, word_penalty=WDPENALTY), beam=BEAM,
        ngram_lm=arpa, ngram_source="arpa")
    report = run_rescore(config)
    assert not report.failures and len(report.results) == len(files)
    ours = {h["uttid"]: h for h in map(json.loads, (tmp_path / "out" / "nbest.jsonl").read_text().splitlines())}
    decoder = read_transcripts(DATA / "onebest")
    paths = {line.split()[0]: [int(x) for x in line.split()[1:]]
             for line in (DATA / "onebest_path").read_text().splitlines()}
    ngram = load_ngram(arpa)
    pocketsphinx = pytest.importorskip("pocketsphinx")
    ps_model = pocketsphinx.NGramModel.readfile(str(arpa))

    def ids(words):
        return [t for w in words for t in ngram.vocabulary.encode_word(w)]

    def exact(am, words):
        return am + LMSCALE * float(ngram.sentence_log_probs([ids(words)])[0]) + WDPENALTY * len(words)

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
        batch = LatticeBatch.from_lattices([lattice])
        _, kept = prune_by_beam(LevelSchedule.of(batch), batch.am_scores.double() +
                                batch.ngram_scores.double(), BEAM)
        if bool(torch.isin(arcs, kept).all()):  # the decoder's path is in the pruned lattice
            checked += 1
            theirs = exact(float(lattice.am_scores.double()[arcs].sum()), decoder[utt])
            assert mine >= theirs - 1e-6, (utt, mine, theirs)
    assert agree >= MEASURED_AGREEMENT
    assert checked >= 46  # measured: the decoder's path survives the beam in 46 of the 48
