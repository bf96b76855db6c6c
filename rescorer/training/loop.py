"""The training loop: truncated BPTT over cached sentence-reset streams, checkpoints, resume, DDP.

The training text is tokenized once into a memory-mapped cache
(``rescorer.data.prepare``); one epoch walks the B training rows
(``training_rows``, PTB-style contiguous rows) in segments of ``bptt`` tokens
read from it, carrying the solver state (detached) from segment to segment.
Each DDP process reads only its own rows. After each epoch the model is
scored on the validation text; the learning rate is divided by ``lr_decay``
when validation perplexity does not improve, and training stops after
``patience`` such epochs in a row. Every epoch (and, with ``save_every_steps``,
every S steps) writes ``last.pt``; an improved epoch writes ``model.pt``.

Resuming from ``last.pt`` restores weights, optimizer, schedule, RNG states and
the position within the epoch, so on CPU a resumed run gives bitwise the same
weights as an uninterrupted one with the same seed.
"""
import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from rescorer.data.cache import TokenCache
from rescorer.data.prepare import prepare_corpus
from rescorer.data.rows import StreamRows, training_rows
from rescorer.data.vocab import SentencePieceVocabulary, Vocabulary
from rescorer.devices import resolve_device
from rescorer.errors import ConfigError
from rescorer.model.checkpoint import model_from_payload, model_payload, read_checkpoint, save_checkpoint
from rescorer.model.lm import FixedPointLM, detach_state
from rescorer.training.checkpoint import (RESUME_KEYS, EpochPosition, check_resumable, gather_rank_states,
                                          rank_state, restore_rank)
from rescorer.training.config import DEFAULT_LR, TrainConfig, TrainResult
from rescorer.training.distributed import DistributedContext, init_distributed, shutdown_distributed
from rescorer.training.evaluate import evaluate_cache
from rescorer.training.reporting import Reporter, write_log
from rescorer.training.schedule import PlateauSchedule


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
    position: Optional[EpochPosition] = None  # where a mid-epoch last.pt left this process
    data_key: str = ""  # the training cache's key: the text and vocabulary the positions refer to


def _make_optimizer(config: TrainConfig, model: FixedPointLM) -> torch.optim.Optimizer:
    lr = config.lr if config.lr is not None else DEFAULT_LR.get(config.optimizer)
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr)
    raise ConfigError(f"unknown optimizer (expected adam or sgd, got {config.optimizer!r})")


def _prepare(config: TrainConfig, context: DistributedContext, sources: Any, vocab: Optional[Vocabulary],
             reporter: Reporter) -> Tuple[TokenCache, Vocabulary]:
    """The token cache of ``sources``; rank 0 builds it while the other processes wait, then open it."""
    progress = reporter if context.is_main else None
    if context.is_main:
        found = prepare_corpus(sources, config.caches(), vocab, config.recipe(), progress)
    context.barrier()
    if not context.is_main:
        found = prepare_corpus(sources, config.caches(), vocab, config.recipe(), progress)
    return found


def _setup(config: TrainConfig, context: DistributedContext, reporter: Reporter) -> Tuple[_Run, TokenCache]:
    """Open the training cache, build vocabulary, model and optimizer, fresh or from ``last.pt``."""
    device = resolve_device(config.device, context.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    config.recipe()  # conflicting vocabulary options fail before any work
    last_path = Path(config.out_dir) / "last.pt"
    checkpoint, model, vocab = None, None, None
    if config.resume:
        checkpoint = read_checkpoint(last_path)
        check_resumable(config, checkpoint, last_path, context.world_size)
        model, vocab = model_from_payload(checkpoint, last_path)
    elif last_path.exists():
        raise ConfigError("already holds a training run (last.pt); pass --resume or another --out", path=config.out_dir)
    elif config.sp_model is not None:
        vocab = SentencePieceVocabulary.from_file(config.sp_model)
    train_cache, vocab = _prepare(config, context, config.train_path, vocab, reporter)
    torch.manual_seed(config.seed)
    if model is None:
        model = FixedPointLM(config.model_config(vocab.size))
    model.to(device).train()
    optimizer = _make_optimizer(config, model)
    schedule = PlateauSchedule(optimizer.param_groups[0]["lr"], config.lr_decay, config.patience)
    trainer: torch.nn.Module = model
    if context.active:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        trainer = DistributedDataParallel(model, device_ids=ids)
    run = _Run(config, context, device, vocab, model, trainer, optimizer, schedule, [],
               data_key=train_cache.directory.name)
    if checkpoint is not None:
        training = checkpoint["training"]
        run.optimizer.load_state_dict(training["optimizer"])
        run.schedule.load_state(training["schedule"])
        run.history = list(training["history"])
        run.next_epoch = int(training["epoch"]) + 1
        run.position = restore_rank(training, context, device, config.seed)
        if run.position is not None and training.get("data_key") != train_cache.directory.name:
            raise ConfigError("the training text changed since this mid-epoch checkpoint (its data position "
                              "would point elsewhere); resume with the same --train files", path=last_path)
    elif context.active:
        torch.manual_seed(config.seed + context.rank)  # distinct dropout masks per process
    return run, train_cache


def _save_last(run: _Run, epoch: int, position: Optional[EpochPosition] = None) -> None:
    """Write ``last.pt`` atomically (collective under DDP: every rank's state goes to rank 0)."""
    ranks = gather_rank_states(run.context, rank_state(run.device, position))
    if not run.context.is_main:
        return
    payload = model_payload(run.model, run.vocab)
    payload["training"] = {
        "epoch": epoch,
        "optimizer": run.optimizer.state_dict(),
        "schedule": run.schedule.state(),
        "history": run.history,
        "settings": {key: getattr(run.config, key) for key in RESUME_KEYS},
        "world_size": run.context.world_size,
        "data_key": run.data_key,
        "ranks": ranks,
    }
    save_checkpoint(Path(run.config.out_dir) / "last.pt", payload)


def _autocast(device: torch.device):
    """bf16 autocast on CUDA, nothing on CPU."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _train_epoch(run: _Run, epoch: int, rows: StreamRows, reporter: Reporter,
                 deadline: Optional[float]) -> Dict[str, Any]:
    """One pass over this process's rows (from a mid-epoch position if resuming).

    Returns:
      The global NLL sum and token count of the epoch, and whether time ran out.
    """
    config, context = run.config, run.context
    position, run.position = run.position, None
    first, state = (0, None) if position is None else (position.step, position.carry)
    totals = torch.zeros(2, dtype=torch.float64) if position is None else position.totals  # (nll, tokens)
    segments = rows.num_segments(config.bptt)
    reporter.start_epoch(epoch, segments, first)
    out_of_time = False
    for index in range(first, segments):
        segment = rows.segment(index, config.bptt).to(run.device)
        global_tokens = config.batch_size * segment.inputs.shape[1]
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
        done = index + 1
        if config.save_every_steps and done % config.save_every_steps == 0 and done < segments:
            _save_last(run, epoch - 1, EpochPosition(done, state, totals.clone()))
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
    "test_ppl", "stopped", "train_words", "train_oov_rate", ...}``.

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
    if config.save_every_steps is not None and config.save_every_steps < 1:
        raise ConfigError(f"--save-every-steps must be at least 1 (got {config.save_every_steps})")
    run, train_cache = _setup(config, context, reporter)
    if len(train_cache) < config.batch_size:
        raise ConfigError(
            f"training text too short (expected at least --batch-size {config.batch_size} tokens, "
            f"got {len(train_cache)})",
            path=config.train_path,
        )
    reporter.message(f"train: {train_cache.words} words, {train_cache.sentences} sentences, {len(train_cache)} "
                     f"tokens, vocabulary {run.vocab.size}, OOV {100 * train_cache.oov_rate:.2f}%")
    rows = training_rows(train_cache, config.batch_size).shard(context.rank, context.world_size)
    valid_cache, _ = _prepare(config, context, config.valid_path, run.vocab, reporter)
    valid_cache = valid_cache.prefix(config.valid_max_tokens)
    last = Path(config.out_dir) / "last.pt"
    if run.position is not None:
        reporter.message(f"resumed at step {run.position.step} of epoch {run.next_epoch} from {last}")
    elif run.next_epoch > 1:
        reporter.message(f"resumed after epoch {run.next_epoch - 1} from {last}")
    stopped = "epochs"
    for epoch in range(run.next_epoch, config.epochs + 1):
        if run.schedule.exhausted:
            stopped = "early_stop"
            break
        record = _run_epoch(run, epoch, rows, valid_cache, reporter, deadline)
        if record["out_of_time"]:
            stopped = "time"
            break
    return _finish(run, stopped, train_cache, reporter)


def _run_epoch(run: _Run, epoch: int, rows: StreamRows, valid_cache: TokenCache, reporter: Reporter,
               deadline: Optional[float]) -> Dict[str, Any]:
    """Train one epoch, validate, adjust the rate, checkpoint; returns the log record."""
    started = time.monotonic()
    totals = _train_epoch(run, epoch, rows, reporter, deadline)
    valid = evaluate_cache(run.model, valid_cache, context=run.context)
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
    out_dir = Path(run.config.out_dir)
    if run.context.is_main and improved:
        save_checkpoint(out_dir / "model.pt", model_payload(run.model, run.vocab))
    _save_last(run, epoch)
    if run.context.is_main:
        write_log(out_dir / "log.jsonl", run.history)
    run.context.barrier()
    reporter.end_epoch(record)
    if not improved and run.schedule.lr != lr:
        reporter.message(f"valid PPL did not improve: learning rate {lr:g} -> {run.schedule.lr:g}")
    return record


def _finish(run: _Run, stopped: str, train_cache: TokenCache, reporter: Reporter) -> TrainResult:
    """Score model.pt on the test text and write the final log record."""
    out_dir = Path(run.config.out_dir)
    model_path = out_dir / "model.pt"
    best_model, _ = model_from_payload(read_checkpoint(model_path), model_path)
    best_model.to(run.device)
    test_ppl = None
    if run.config.test_path is not None:
        test_cache, _ = _prepare(run.config, run.context, run.config.test_path, run.vocab, reporter)
        test_ppl = evaluate_cache(best_model, test_cache, context=run.context).ppl
    best = run.history[run.schedule.best_epoch - 1]
    final = {
        "event": "final",
        "best_epoch": run.schedule.best_epoch,
        "train_ppl": best["train_ppl"],
        "valid_ppl": best["valid_ppl"],
        "test_ppl": test_ppl,
        "epochs_run": len(run.history),
        "stopped": stopped,
        "train_words": train_cache.words,
        "train_oov_rate": train_cache.oov_rate,
    }
    if run.context.is_main:
        write_log(out_dir / "log.jsonl", run.history, final)
    if stopped == "early_stop":
        reporter.message(f"stopped early: no improvement in {run.config.patience} epochs")
    return TrainResult(final["best_epoch"], final["train_ppl"], final["valid_ppl"], test_ppl,
                       len(run.history), stopped, model_path, out_dir / "log.jsonl")
