"""What ``fprescore train`` is asked to do (``TrainConfig``) and what it reports (``TrainResult``)."""
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

from rescorer.data.prepare import DEFAULT_SP_SAMPLE, VocabularyRecipe
from rescorer.errors import ConfigError
from rescorer.model.config import ModelConfig
from rescorer.paths import PathLike

DEFAULT_LR = {"adam": 1e-3, "sgd": 20.0}
Sources = Union[PathLike, Sequence[PathLike]]


@dataclass
class TrainConfig:
    """Everything ``fprescore train`` needs; the CLI only fills this in.

    Attributes:
      train_path, valid_path, test_path:
        One-sentence-per-line texts: each a file, a glob, or a list of them
        (their files in order are one corpus); test is optional.
      out_dir:
        Receives last.pt, model.pt, log.jsonl (and the cache, by default).
      architecture:
        The model's settings; its ``vocab_size`` is a placeholder that
        ``model_config`` replaces with the vocabulary's size.
      batch_size:
        B, global number of training rows (split over DDP processes).
      bptt:
        Tokens per truncated-BPTT segment.
      epochs:
        Maximum number of epochs.
      lr:
        Initial learning rate; None picks 1e-3 for Adam and 20 for SGD.
      lr_decay, patience:
        Divide the rate by ``lr_decay`` after an epoch without improvement;
        stop after ``patience`` such epochs in a row.
      clip:
        Gradient-norm clipping threshold (0 disables).
      device:
        "auto" (CUDA if available), "cpu" or "cuda".
      resume:
        Continue from ``out_dir/last.pt`` (also from a mid-epoch one).
      max_minutes:
        Wall-clock budget of this invocation; training stops at the first
        segment past it, then validates and checkpoints.
      sp_model, sp_vocab_size, sp_sample_sentences:
        Use this sentencepiece model, or train one with this many pieces on a
        sample of at most this many sentences; neither: a word vocabulary.
      max_vocab_size, min_count:
        Word vocabulary: the most frequent words (``<eos>``, ``<unk>``
        included), seen at least ``min_count`` times; the rest become ``<unk>``.
      cache_dir:
        Token caches (None: ``out_dir/cache``); share one between runs to reuse them.
      save_every_steps:
        Also write ``last.pt`` every this many steps within an epoch.
      valid_max_tokens:
        Validate on the leading whole sentences of at most this many tokens.
    """

    train_path: Sources
    valid_path: Sources
    out_dir: Path
    test_path: Optional[Sources] = None
    architecture: ModelConfig = field(default_factory=lambda: ModelConfig(vocab_size=1))
    batch_size: int = 20
    bptt: int = 35
    epochs: int = 10
    lr: Optional[float] = None
    optimizer: str = "adam"
    lr_decay: float = 4.0
    patience: int = 3
    clip: float = 0.25
    seed: int = 1
    device: str = "auto"
    resume: bool = False
    max_minutes: Optional[float] = None
    sp_model: Optional[Path] = None
    sp_vocab_size: Optional[int] = None
    sp_sample_sentences: int = DEFAULT_SP_SAMPLE
    max_vocab_size: Optional[int] = None
    min_count: int = 1
    cache_dir: Optional[Path] = None
    save_every_steps: Optional[int] = None
    valid_max_tokens: Optional[int] = None

    def model_config(self, vocab_size: int) -> ModelConfig:
        """The architecture with the vocabulary's size (validated against ModelConfig's bounds)."""
        return dataclasses.replace(self.architecture, vocab_size=vocab_size)

    def recipe(self) -> VocabularyRecipe:
        """How to choose the vocabulary from the training text.

        Raises:
          ConfigError: for conflicting vocabulary options.
        """
        if self.sp_model is not None and (self.sp_vocab_size is not None or self.max_vocab_size is not None):
            raise ConfigError("--sp-model excludes --sp-vocab-size and --vocab-size")
        return VocabularyRecipe(self.max_vocab_size, self.min_count, self.sp_vocab_size, self.sp_sample_sentences)

    def caches(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir is not None else Path(self.out_dir) / "cache"


@dataclass
class TrainResult:
    """Outcome of ``train``; perplexities are of the best epoch's model (model.pt)."""

    best_epoch: int
    train_ppl: float
    valid_ppl: float
    test_ppl: Optional[float]
    epochs_run: int
    stopped: str
    model_path: Path
    log_path: Path
