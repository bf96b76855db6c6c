"""The README's "Library API" is what ``rescorer`` exports, and ``rescore_batch`` is the command's math."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rescorer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "rescoring"))
import rescoring_builders as builders  # noqa: E402

# Provided by other branches (engine: shortest_paths, total_scores; readers: read_lattices,
# read_batch). MERGE NOTE: empty this set when those branches are merged, so every name is checked.
def documented_names():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Library API\n", 1)[1].split("\n## ", 1)[0]
    return [re.match(r"\| `([A-Za-z_]+)", line).group(1) for line in section.splitlines()
            if re.match(r"\| `[A-Za-z_]+", line)]


def test_readme_documents_exactly_the_exported_names():
    assert sorted(documented_names()) == rescorer.__all__
    assert rescorer.__all__ == ["LatticeBatch", "read_batch", "read_lattices", "rescore_batch",
                                "shortest_paths", "total_scores"]


@pytest.mark.parametrize("name", documented_names())
def test_every_documented_name_imports_from_rescorer(name):
    exec(f"from rescorer import {name}", {})
    assert callable(getattr(rescorer, name))


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rescorer.nope  # noqa: B018


def test_import_rescorer_loads_no_torch():
    code = "import sys, rescorer; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            check=True)
    assert result.stdout == "False\n"


def test_rescore_batch_returns_what_the_command_writes(tmp_path):
    from rescorer.data.vocab import WordVocabulary
    from rescorer.formats.detect import iter_lattices
    from rescorer.formats.k2_pt import write_k2
    from rescorer.lattice.batch import LatticeBatch
    from rescorer.lattice.symbols import SymbolTable
    from rescorer.rescoring.combine import Scales
    from rescorer.rescoring.config import RescoreConfig
    from rescorer.rescoring.pipeline import run_rescore

    vocabulary = WordVocabulary(builders.LM_WORDS)
    model = builders.tiny_model(vocabulary.size, iterations=2)
    checkpoint = builders.save_model(tmp_path / "model.pt", model, vocabulary)
    words = tmp_path / "words.txt"
    builders.symbol_table().write(words)
    second = [arc if arc[2] != "c" or arc[0] != 1 else (1, 2, "c", -1.0, -2.5) for arc in builders.ARCS]
    write_k2(tmp_path / "lats.pt", [builders.tiny_lattice("u1"), builders.tiny_lattice("u2", arcs=second)])
    scales = Scales(am=1.0, ngram=0.5, lm=0.7, word_penalty=-0.25)
    run_rescore(RescoreConfig(lattices=[tmp_path / "lats.pt"], model=checkpoint, words=words,
                              out=str(tmp_path / "out"), scales=scales, nbest=4, beam=None))
    written = [json.loads(line) for line in (tmp_path / "out" / "nbest.jsonl").open()]

    symbols = SymbolTable.from_file(words)
    lattices = list(iter_lattices([tmp_path / "lats.pt"], symbols))  # as the file has them
    hypotheses, failures = rescorer.rescore_batch(LatticeBatch.from_lattices(lattices), model,
                                                  vocabulary, symbols, scales=scales, nbest=4)
    assert failures == {} and list(hypotheses) == ["u1", "u2"]
    assert [json.loads(hyp.to_json()) for utt in ("u1", "u2") for hyp in hypotheses[utt]] == written
    assert all(hyp.arpa is None for utt in ("u1", "u2") for hyp in hypotheses[utt])  # no --ngram-lm
    for hyp in written:
        assert hyp["nnlm"] == pytest.approx(builders.sentence_log_prob(model, vocabulary, hyp["words"]),
                                            abs=1e-4)


def test_rescore_batch_lists_a_bad_lattice_and_rescores_the_rest():
    from rescorer.data.vocab import WordVocabulary
    from rescorer.errors import LatticeError
    from rescorer.lattice.batch import LatticeBatch

    vocabulary = WordVocabulary(builders.LM_WORDS)
    model = builders.tiny_model(vocabulary.size, iterations=2)
    cyclic = builders.tiny_lattice("loop", arcs=builders.ARCS + [(2, 1, "a", -1.0, 0.0)])
    hypotheses, failures = rescorer.rescore_batch(
        LatticeBatch.from_lattices([cyclic, builders.tiny_lattice("ok")]), model, vocabulary,
        builders.symbol_table())
    assert list(hypotheses) == ["ok"] and len(hypotheses["ok"]) == 1
    assert list(failures) == ["loop"] and isinstance(failures["loop"], LatticeError)
    assert "utterance loop" in str(failures["loop"]) and "cycle" in str(failures["loop"])
