"""The training loop: truncated BPTT over sentence-reset streams, checkpoints, resume, DDP.

One epoch walks the B training rows in segments of ``bptt`` tokens, carrying
the solver state (detached) from segment to segment. After each epoch the
model is scored on the validation text; the learning rate is divided by
``lr_decay`` when validation perplexity does not improve, and training stops
after ``patience`` such epochs in a row. Every epoch writes ``last.pt``
(everything needed to resume) and, when it improved, ``model.pt``.

Resuming from ``last.pt`` restores weights, optimizer, schedule and RNG
states, so on CPU a resumed run gives bitwise the same weights as an
uninterrupted one with the same seed.
"""
import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F

from rescorer.data.batching import Batch, contiguous_rows, encode_sentences, shard_rows
from rescorer.data.corpus import read_sentences
from rescorer.data.vocab import SentencePieceVocabulary, Vocabulary, WordVocabulary
from rescorer.errors import CheckpointError, ConfigError
from rescorer.model.config import ModelConfig
from rescorer.model.lm import FixedPointLM, detach_state
from rescorer.training.checkpoint import model_from_payload, model_payload, read_checkpoint, save_checkpoint
from rescorer.training.distributed import DistributedContext, init_distributed, shutdown_distributed
from rescorer.training.evaluate import evaluate_stream
from rescorer.training.reporting import Reporter, write_log
from rescorer.training.schedule import PlateauSchedule

DEFAULT_LR = {"adam": 1e-3, "sgd": 20.0}
# Settings that must not change when a run is resumed.
RESUME_KEYS = ("batch_size", "bptt", "optimizer", "seed")


@dataclass
class TrainConfig:
    """Everything ``fprescore train`` needs; the CLI only fills this in.

    Attributes:
      train_path, valid_path, test_path:
        One-sentence-per-line texts; test is optional.
      out_dir:
        Receives last.pt, model.pt and log.jsonl.
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
        Continue from ``out_dir/last.pt``.
      max_minutes:
        Wall-clock budget of this invocation; training stops at the first
        segment past it, then validates and checkpoints.
      sp_model, sp_vocab_size:
        Use this sentencepiece model, or train one with this many pieces;
        neither: a word vocabulary from the training text.
    """

    train_path: Path
    valid_path: Path
    out_dir: Path
    test_path: Optional[Path] = None
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

    def model_config(self, vocab_size: int) -> ModelConfig:
        """The architecture with the vocabulary's size."""
        return dataclasses.replace(self.architecture, vocab_size=vocab_size)


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


@dataclass
class _Run:
    """The live objects of one training run."""

    config: TrainConfig
    context: DistributedContext
    device: torch.device
    vocab: Vocabulary
    model: FixedPointLM
    trainer: torch.nn.Module  # the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    schedule: PlateauSchedule
    history: List[Dict[str, Any]]
    next_epoch: int = 1


def resolve_device(name: str, context: DistributedContext) -> torch.device:
    """"auto" -> CUDA if available; under torchrun, CUDA device ``local_rank``."""
    if name not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"unknown device (expected auto, cpu or cuda, got {name!r})")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda but no CUDA device is available")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", context.local_rank)


def build_vocabulary(config: TrainConfig, train_sentences: List[List[str]]) -> Vocabulary:
    """The vocabulary chosen by ``sp_model`` / ``sp_vocab_size`` (else word-level)."""
    if config.sp_model is not None and config.sp_vocab_size is not None:
        raise ConfigError("give either --sp-model or --sp-vocab-size, not both")
    if config.sp_model is not None:
        return SentencePieceVocabulary.from_file(config.sp_model)
    if config.sp_vocab_size is not None:
        return SentencePieceVocabulary.train(train_sentences, config.sp_vocab_size)
    return WordVocabulary.build(train_sentences)


def _make_optimizer(config: TrainConfig, model: FixedPointLM) -> torch.optim.Optimizer:
    lr = config.lr if config.lr is not None else DEFAULT_LR.get(config.optimizer)
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr)
    raise ConfigError(f"unknown optimizer (expected adam or sgd, got {config.optimizer!r})")


def _setup(config: TrainConfig, context: DistributedContext, train_sentences: List[List[str]]) -> _Run:
    """Build vocabulary, model and optimizer, fresh or from ``last.pt``."""
    device = resolve_device(config.device, context)
    last_path = Path(config.out_dir) / "last.pt"
    checkpoint = None
    if config.resume:
        checkpoint = read_checkpoint(last_path)
        _check_resumable(config, checkpoint, last_path)
    elif last_path.exists():
        raise ConfigError("already holds a training run (last.pt); pass --resume or another --out", path=config.out_dir)
    torch.manual_seed(config.seed)
    if checkpoint is not None:
        model, vocab = model_from_payload(checkpoint, last_path)
    else:
        vocab = build_vocabulary(config, train_sentences)
        model = FixedPointLM(config.model_config(vocab.size))
    model.to(device).train()
    optimizer = _make_optimizer(config, model)
    schedule = PlateauSchedule(optimizer.param_groups[0]["lr"], config.lr_decay, config.patience)
    trainer: torch.nn.Module = model
    if context.active:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        trainer = DistributedDataParallel(model, device_ids=ids)
    run = _Run(config, context, device, vocab, model, trainer, optimizer, schedule, [])
    if checkpoint is not None:
        _restore(run, checkpoint["training"])
    elif context.active:
        torch.manual_seed(config.seed + context.rank)  # distinct dropout masks per process
    return run


def _check_resumable(config: TrainConfig, checkpoint: Dict[str, Any], path: Path) -> None:
    """Refuse to resume with a different model or batching."""
    if not isinstance(checkpoint.get("training"), dict):
        raise CheckpointError("not a resumable checkpoint (no 'training' entry; use last.pt)", path=path)
    stored = checkpoint["training"]["settings"]
    expected = dataclasses.asdict(config.model_config(checkpoint["config"]["vocab_size"]))
    differences = [f"{key}: {checkpoint['config'][key]!r} != {value!r}" for key, value in expected.items()
                   if checkpoint["config"].get(key) != value]
    differences += [f"{key}: {stored[key]!r} != {getattr(config, key)!r}" for key in RESUME_KEYS
                    if stored.get(key) != getattr(config, key)]
    if differences:
        changes = "; ".join(differences)
        raise ConfigError(f"cannot resume with different settings (stored != given: {changes})", path=path)


def _restore(run: _Run, training: Dict[str, Any]) -> None:
    """Load optimizer, schedule, RNG and history from ``last.pt``'s training entry."""
    run.optimizer.load_state_dict(training["optimizer"])
    run.schedule.load_state(training["schedule"])
    run.history = list(training["history"])
    run.next_epoch = int(training["epoch"]) + 1
    torch.set_rng_state(training["rng"]["cpu"])
    if run.device.type == "cuda" and training["rng"].get("cuda"):
        torch.cuda.set_rng_state_all(list(training["rng"]["cuda"]))
    if run.context.rank > 0:
        # Only rank 0's RNG state is stored; the others reseed deterministically.
        torch.manual_seed(run.config.seed + 1000 * run.next_epoch + run.context.rank)


def _save_last(run: _Run, epoch: int) -> None:
    """Write ``last.pt`` atomically (rank 0 only)."""
    payload = model_payload(run.model, run.vocab)
    payload["training"] = {
        "epoch": epoch,
        "optimizer": run.optimizer.state_dict(),
        "schedule": run.schedule.state(),
        "history": run.history,
        "settings": {key: getattr(run.config, key) for key in RESUME_KEYS},
        "rng": {
            "cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if run.device.type == "cuda" else [],
        },
    }
    save_checkpoint(Path(run.config.out_dir) / "last.pt", payload)


def _autocast(device: torch.device):
    """bf16 autocast on CUDA, nothing on CPU."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _train_epoch(
    run: _Run, batch: Batch, global_rows: int, reporter: Reporter, deadline: Optional[float]
) -> Dict[str, Any]:
    """One pass over this process's rows; returns loss sum, token count and whether time ran out."""
    config, context = run.config, run.context
    totals = torch.zeros(2, dtype=torch.float64)  # (nll, tokens) of this process
    state = None
    out_of_time = False
    for segment in batch.segments(config.bptt):
        segment = segment.to(run.device)
        global_tokens = global_rows * segment.inputs.shape[1]
        with _autocast(run.device):
            logits, state = run.trainer(segment.inputs, segment.resets, state)  # (B, T, V)
        flat_logits = logits.float().reshape(-1, logits.shape[-1])  # (B * T, V)
        nll = F.cross_entropy(flat_logits, segment.targets.reshape(-1), reduction="sum")
        # DDP averages gradients over processes, so this makes them the global mean.
        loss = nll * (context.world_size / global_tokens)
        run.optimizer.zero_grad()
        loss.backward()
        if config.clip > 0:
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), config.clip)
        run.optimizer.step()
        state = detach_state(state)
        nll_value = nll.item()
        totals += torch.tensor([nll_value, segment.targets.numel()], dtype=torch.float64)
        reporter.step(global_tokens, nll_value / segment.targets.numel())
        if deadline is not None and _past(deadline, context, run.device):
            out_of_time = True
            break
    totals = context.all_reduce_sum(totals.to(run.device)).cpu()
    return {"nll": float(totals[0]), "tokens": int(totals[1]), "out_of_time": out_of_time}


def _past(deadline: float, context: DistributedContext, device: torch.device) -> bool:
    """True once any process is past ``deadline`` (all processes agree)."""
    flag = torch.tensor([float(time.monotonic() > deadline)], device=device)
    return bool(context.all_reduce_sum(flag)[0] > 0)


def train(config: TrainConfig, reporter: Optional[Reporter] = None) -> TrainResult:
    """Train (or resume) a model as ``config`` says; rank 0 writes the files.

    Log records (``out_dir/log.jsonl``), one per epoch::

        {"event": "epoch", "epoch", "train_ppl", "valid_ppl", "lr", "seconds",
         "tokens_per_second", "improved", "out_of_time"}

    then one ``{"event": "final", "best_epoch", "train_ppl", "valid_ppl",
    "test_ppl", "stopped", ...}``.

    Raises:
      ConfigError, InputFormatError, CheckpointError: on bad options, text or checkpoint.
    """
    reporter = reporter or Reporter()
    context = init_distributed("cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu")
    try:
        return _train(config, context, reporter)
    finally:
        shutdown_distributed(context)


def _train(config: TrainConfig, context: DistributedContext, reporter: Reporter) -> TrainResult:
    deadline = None if config.max_minutes is None else time.monotonic() + 60.0 * config.max_minutes
    if config.batch_size < context.world_size:
        raise ConfigError(f"--batch-size {config.batch_size} is smaller than the {context.world_size} processes")
    train_sentences = read_sentences(config.train_path)
    valid_sentences = read_sentences(config.valid_path)
    run = _setup(config, context, train_sentences)
    train_stream = encode_sentences(train_sentences, run.vocab)
    if len(train_stream) < config.batch_size:
        raise ConfigError(
            f"training text too short (expected at least --batch-size {config.batch_size} tokens, "
            f"got {len(train_stream)})",
            path=config.train_path,
        )
    train_batch = contiguous_rows(train_stream, config.batch_size)
    train_batch = train_batch.rows(*shard_rows(config.batch_size, context.rank, context.world_size))
    valid_stream = encode_sentences(valid_sentences, run.vocab)
    if run.next_epoch > 1:
        reporter.message(f"resumed after epoch {run.next_epoch - 1} from {Path(config.out_dir) / 'last.pt'}")
    stopped = "epochs"
    for epoch in range(run.next_epoch, config.epochs + 1):
        if run.schedule.exhausted:
            stopped = "early_stop"
            break
        record = _run_epoch(run, epoch, train_batch, valid_stream, reporter, deadline)
        if record["out_of_time"]:
            stopped = "time"
            break
    return _finish(run, stopped, reporter)


def _run_epoch(run: _Run, epoch: int, train_batch: Batch, valid_stream, reporter: Reporter,
               deadline: Optional[float]) -> Dict[str, Any]:
    """Train one epoch, validate, adjust the rate, checkpoint; returns the log record."""
    started = time.monotonic()
    reporter.start_epoch(epoch, train_batch.num_segments(run.config.bptt))
    totals = _train_epoch(run, train_batch, run.config.batch_size, reporter, deadline)
    valid = evaluate_stream(run.model, valid_stream, context=run.context)
    lr = run.optimizer.param_groups[0]["lr"]
    improved = run.schedule.update(valid.ppl)
    for group in run.optimizer.param_groups:
        group["lr"] = run.schedule.lr
    seconds = time.monotonic() - started
    record = {
        "event": "epoch",
        "epoch": epoch,
        "train_ppl": math.exp(totals["nll"] / max(totals["tokens"], 1)),
        "valid_ppl": valid.ppl,
        "lr": lr,
        "seconds": seconds,
        "tokens_per_second": totals["tokens"] / seconds,
        "improved": improved,
        "out_of_time": totals["out_of_time"],
    }
    run.history.append(record)
    if run.context.is_main:
        out_dir = Path(run.config.out_dir)
        if improved:
            save_checkpoint(out_dir / "model.pt", model_payload(run.model, run.vocab))
        _save_last(run, epoch)
        write_log(out_dir / "log.jsonl", run.history)
    run.context.barrier()
    reporter.end_epoch(record)
    if not improved and run.schedule.lr != lr:
        reporter.message(f"valid PPL did not improve: learning rate {lr:g} -> {run.schedule.lr:g}")
    return record


def _finish(run: _Run, stopped: str, reporter: Reporter) -> TrainResult:
    """Score model.pt on the test text and write the final log record."""
    out_dir = Path(run.config.out_dir)
    model_path = out_dir / "model.pt"
    best_model, _ = model_from_payload(read_checkpoint(model_path), model_path)
    best_model.to(run.device)
    test_ppl = None
    if run.config.test_path is not None:
        test_stream = encode_sentences(read_sentences(run.config.test_path), run.vocab)
        test_ppl = evaluate_stream(best_model, test_stream, context=run.context).ppl
    best = run.history[run.schedule.best_epoch - 1]
    final = {
        "event": "final",
        "best_epoch": run.schedule.best_epoch,
        "train_ppl": best["train_ppl"],
        "valid_ppl": best["valid_ppl"],
        "test_ppl": test_ppl,
        "epochs_run": len(run.history),
        "stopped": stopped,
    }
    if run.context.is_main:
        write_log(out_dir / "log.jsonl", run.history, final)
    if stopped == "early_stop":
        reporter.message(f"stopped early: no improvement in {run.config.patience} epochs")
    return TrainResult(final["best_epoch"], final["train_ppl"], final["valid_ppl"], test_ppl,
                       len(run.history), stopped, model_path, out_dir / "log.jsonl")
