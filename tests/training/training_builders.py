"""Builders for training tests: a tiny deterministic corpus and a tiny config."""
import random
from pathlib import Path

from rescorer.training.loop import TrainConfig

SUBJECTS = ["the cat", "a dog", "the old man", "my sister", "the company"]
VERBS = ["sat on", "looked at", "bought", "was n't near", "liked"]
OBJECTS = ["the mat", "a house", "the red car", "two apples", "the market"]


def write_corpus(path: Path, sentences: int, seed: int) -> Path:
    """A small subject-verb-object text, one sentence per line, PTB-style spacing."""
    rng = random.Random(seed)
    lines = [f" {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} \n" for _ in range(sentences)]
    path.write_text("".join(lines))
    return path


def tiny_config(corpus, out_dir: Path, **overrides) -> TrainConfig:
    train, valid, test = corpus
    settings = dict(
        train_path=train, valid_path=valid, test_path=test, out_dir=out_dir, embed_dim=16, hidden_dim=16,
        batch_size=8, bptt=12, epochs=3, device="cpu", iterations=2, seed=7,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def make_corpus(folder: Path):
    """(train, valid, test) paths of a tiny corpus in ``folder``."""
    return (
        write_corpus(folder / "train.txt", 300, seed=1),
        write_corpus(folder / "valid.txt", 40, seed=2),
        write_corpus(folder / "test.txt", 40, seed=3),
    )
