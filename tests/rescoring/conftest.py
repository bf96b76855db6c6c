"""Builders shared by the rescoring tests: a tiny lattice, words, a tiny random LM."""
from pathlib import Path
from typing import List, Optional

import pytest
import torch

from rescorer.data.vocab import Vocabulary, WordVocabulary
from rescorer.formats.k2_pt import write_k2
from rescorer.lattice.fsavec import Lattice, splits_from_counts
from rescorer.lattice.symbols import SymbolTable
from rescorer.model.config import ModelConfig
from rescorer.model.lm import FixedPointLM
from rescorer.training.checkpoint import model_payload, save_checkpoint

# words.txt of the tiny lattices: "e" is unknown to the word LM.
WORDS = ["a", "b", "c", "d", "e"]
LM_WORDS = ["<eos>", "<unk>", "a", "b", "c", "d"]

# The tiny lattice (one word per arc, 0 = epsilon, -1 into the final state 5):
#
#   0 --a/b--> 1 --c/d/e/eps--> 2 --a/b--> 3 --eps--> 4 --(-1)--> 5
#                                 \-------- c -------> 4
#
# Arc scores (am, ngram) are chosen so that by am + ngram alone the best path
# is "a c a" (-1 -1 -1 + ngram -0.5*3 ...) -- see FIRST_PASS_BEST.
ARCS = [  # (src, dst, word, am, ngram)
    (0, 1, "a", -1.0, -0.5),
    (0, 1, "b", -1.5, -0.2),
    (1, 2, "c", -1.0, -0.5),
    (1, 2, "d", -2.0, -0.1),
    (1, 2, "e", -2.5, -0.3),
    (1, 2, None, -3.0, 0.0),
    (2, 3, "a", -1.0, -0.4),
    (2, 3, "b", -1.2, -0.6),
    (2, 4, "c", -2.5, -0.2),
    (3, 4, None, 0.0, 0.0),
    (4, 5, -1, -0.1, -0.3),
]
# am + ngram per path: best is a(-1.5) c(-1.5) a(-1.4) final(-0.4) = -4.8
FIRST_PASS_BEST = ["a", "c", "a"]


def symbol_table() -> SymbolTable:
    table = SymbolTable()
    for word in WORDS:
        table.add(word)
    return table


def tiny_lattice(utt_id: str = "utt1", arcs=ARCS) -> Lattice:
    table = symbol_table()
    labels, words = [], []
    for _, _, word, _, _ in arcs:
        if word == -1:
            labels.append(-1)
            words.append([])
        elif word is None:
            labels.append(0)
            words.append([])
        else:
            labels.append(table.id(word))
            words.append([table.id(word)])
    counts = torch.tensor([len(w) for w in words])
    return Lattice(
        utt_id=utt_id,
        num_states=max(dst for _, dst, _, _, _ in arcs) + 1,
        src=torch.tensor([a[0] for a in arcs]),
        dst=torch.tensor([a[1] for a in arcs]),
        labels=torch.tensor(labels),
        word_splits=splits_from_counts(counts),
        word_ids=torch.tensor([w for ws in words for w in ws], dtype=torch.int64),
        am_scores=torch.tensor([a[3] for a in arcs], dtype=torch.float32),
        ngram_scores=torch.tensor([a[4] for a in arcs], dtype=torch.float32),
    )


def tiny_model(vocabulary_size: int, iterations: int = 2, solver: str = "jacobi", seed: int = 0):
    torch.manual_seed(seed)
    config = ModelConfig(vocab_size=vocabulary_size, embed_dim=8, hidden_dim=8,
                         iterations=iterations, solver=solver)
    model = FixedPointLM(config).eval()
    # Larger output weights make LM scores differ clearly between words.
    with torch.no_grad():
        model.output.weight.mul_(20.0)
    return model


def save_model(path: Path, model: FixedPointLM, vocabulary: Vocabulary) -> Path:
    save_checkpoint(path, model_payload(model, vocabulary))
    return path


def sentence_log_prob(model: FixedPointLM, vocabulary: Vocabulary, words: List[str]) -> float:
    """log P(words <eos>) with full histories: the training-time definition."""
    tokens = [token for word in words for token in vocabulary.encode_word(word)]
    inputs = [vocabulary.bos_id] + tokens
    targets = tokens + [vocabulary.eos_id]
    width = len(inputs)
    histories = torch.zeros(width, width, dtype=torch.int64)
    for position in range(width):
        histories[position, : position + 1] = torch.tensor(inputs[: position + 1])
    lengths = torch.arange(1, width + 1)
    log_probs = model.next_token_log_probs(histories, lengths)
    return float(log_probs[torch.arange(width), torch.tensor(targets)].double().sum())


@pytest.fixture
def workspace(tmp_path):
    """A k2 lattice file with two utterances, words.txt and a K=2 word LM."""
    lattices = tmp_path / "lats.pt"
    second = [arc if arc[2] != "c" or arc[0] != 1 else (1, 2, "c", -1.0, -2.5) for arc in ARCS]
    write_k2(lattices, [tiny_lattice("utt1"), tiny_lattice("utt2", second)])
    words = tmp_path / "words.txt"
    symbol_table().write(words)
    vocabulary = WordVocabulary(LM_WORDS)
    model = tiny_model(vocabulary.size, iterations=2)
    checkpoint = save_model(tmp_path / "model.pt", model, vocabulary)
    return {"lattices": lattices, "words": words, "model": checkpoint, "tmp": tmp_path,
            "lm": model, "vocabulary": vocabulary}
