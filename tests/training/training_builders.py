"""Builders for training tests: a tiny deterministic corpus and a tiny config."""
import dataclasses
import random
from pathlib import Path

from rescorer.model.config import ModelConfig
from rescorer.training.config import TrainConfig

SUBJECTS = ["the cat", "a dog", "the old man", "my sister", "the company"]
VERBS = ["sat on", "looked at", "bought", "was n't near", "liked"]
OBJECTS = ["the mat", "a house", "the red car", "two apples", "the market"]


def write_corpus(path: Path, sentences: int, seed: int) -> Path:
    """A small subject-verb-object text, one sentence per line, PTB-style spacing."""
    rng = random.Random(seed)
    lines = [f" {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} \n" for _ in range(sentences)]
    path.write_text("".join(lines))
    return path


ARCHITECTURE_FIELDS = {field.name for field in dataclasses.fields(ModelConfig)}


def tiny_config(corpus, out_dir: Path, **overrides) -> TrainConfig:
    """A fast TrainConfig; overrides may name TrainConfig or ModelConfig fields."""
    train, valid, test = corpus
    architecture = dict(vocab_size=1, embed_dim=16, hidden_dim=16, iterations=2)
    architecture.update({key: value for key, value in overrides.items() if key in ARCHITECTURE_FIELDS})
    settings = dict(
        train_path=train, valid_path=valid, test_path=test, out_dir=out_dir,
        batch_size=8, bptt=12, epochs=3, device="cpu", seed=7,
    )
    settings.update({key: value for key, value in overrides.items() if key not in ARCHITECTURE_FIELDS})
    return TrainConfig(architecture=ModelConfig(**architecture), **settings)


def make_corpus(folder: Path):
    """(train, valid, test) paths of a tiny corpus in ``folder``."""
    return (
        write_corpus(folder / "train.txt", 300, seed=1),
        write_corpus(folder / "valid.txt", 40, seed=2),
        write_corpus(folder / "test.txt", 40, seed=3),
    )
