"""Builders shared by the rescoring and rescore-CLI tests: a tiny lattice, words, a tiny random LM."""
from pathlib import Path
from typing import List

import torch

from rescorer.data.vocab import Vocabulary
from rescorer.lattice.fsavec import Lattice, splits_from_counts
from rescorer.lattice.symbols import SymbolTable
from rescorer.model.config import ModelConfig
from rescorer.model.lm import FixedPointLM
from rescorer.model.checkpoint import model_payload, save_checkpoint

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


def symbol_table(words=WORDS) -> SymbolTable:
    table = SymbolTable()
    for word in words:
        table.add(word)
    return table


def tiny_lattice(utt_id: str = "utt1", arcs=ARCS, words=WORDS) -> Lattice:
    """The lattice drawn above; ``words`` renames a..e (for subword tests)."""
    table = symbol_table(words)
    rename = dict(zip(WORDS, words))
    arcs = [(src, dst, rename.get(word, word), am, ngram) for src, dst, word, am, ngram in arcs]
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
    """log P(words <eos>) as training computes it: forward() over the sentence, reset at <bos>."""
    tokens = [token for word in words for token in vocabulary.encode_word(word)]
    inputs = torch.tensor([[vocabulary.bos_id] + tokens])  # (1, T+1)
    targets = torch.tensor(tokens + [vocabulary.eos_id])  # (T+1,)
    resets = torch.zeros_like(inputs, dtype=torch.bool)
    resets[0, 0] = True
    with torch.no_grad():
        logits, _ = model(inputs, resets)  # (1, T+1, V)
    log_probs = torch.log_softmax(logits[0].double(), dim=-1)
    return float(log_probs[torch.arange(targets.numel()), targets].sum())
