"""``fprescore train``: options -> ``TrainConfig`` -> ``rescorer.training.loop.train``.

Examples::

    fprescore train --corpus ptb --data-dir data/ptb --out exp/ptb-k4 --iterations 4
    fprescore train --train a.txt --valid b.txt --out exp/mine --solver sequential
    torchrun --nproc_per_node 4 -m rescorer train --corpus ptb --data-dir data/ptb --out exp/ddp
"""
import time
from pathlib import Path
from typing import Annotated, Any, Dict, List, Optional

import typer
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TransferSpeedColumn)
from rich.table import Table

from rescorer.cli.common import console, guarded

DATA = "Data"
MODEL = "Model"
OPTIM = "Optimization"
RUN = "Run"
VOCAB = "Vocabulary"

ExistingFile = dict(exists=True, dir_okay=False, readable=True)


class RichDataProgress:
    """A byte progress bar with MB/s for checksumming and tokenizing a corpus."""

    def __init__(self, enabled: bool = True) -> None:
        self.data_bar = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TimeElapsedColumn(), console=console, disable=not enabled,
        )
        self.data_task = None

    def data_start(self, label: str, total_bytes: int) -> None:
        self.data_bar.start()
        self.data_task = self.data_bar.add_task(label, total=total_bytes)

    def data_advance(self, done_bytes: int) -> None:
        self.data_bar.update(self.data_task, advance=done_bytes)

    def data_stop(self) -> None:
        self.data_bar.stop()
        if self.data_task is not None:
            self.data_bar.remove_task(self.data_task)
            self.data_task = None


class RichReporter(RichDataProgress):
    """Progress bar with tokens/s and running loss; lines for epochs and notes (rank 0 only)."""

    def __init__(self, enabled: bool) -> None:
        super().__init__(enabled)
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]:>8.0f} tok/s  loss {task.fields[loss]:.3f}"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
        )
        self.task = None
        self.loss_sum = self.steps = self.tokens = 0.0
        self.started = time.monotonic()

    def start_epoch(self, epoch: int, segments: int, done: int = 0) -> None:
        self.progress.start()
        self.task = self.progress.add_task("train", total=segments, completed=done, epoch=epoch, speed=0.0,
                                           loss=float("nan"))
        self.loss_sum = self.steps = self.tokens = 0.0
        self.started = time.monotonic()

    def step(self, tokens: int, loss: float) -> None:
        self.loss_sum += loss
        self.steps += 1
        self.tokens += tokens
        elapsed = max(time.monotonic() - self.started, 1e-9)
        speed = self.tokens / elapsed
        self.progress.update(self.task, advance=1, speed=speed, loss=self.loss_sum / self.steps)

    def end_epoch(self, record: Dict[str, Any]) -> None:
        self.progress.stop()
        if self.task is not None:
            self.progress.remove_task(self.task)
        if self.enabled:
            mark = " *" if record["improved"] else ""
            console.print(
                f"epoch {record['epoch']}: train PPL {record['train_ppl']:.2f}  valid PPL {record['valid_ppl']:.2f}"
                f"  lr {record['lr']:g}  {record['tokens_per_second']:.0f} tok/s  {record['seconds']:.1f}s{mark}"
            )

    def message(self, text: str) -> None:
        if self.enabled:
            console.print(text)


def _result_table(result: Any) -> Table:
    table = Table(title=f"best epoch {result.best_epoch} of {result.epochs_run} (stopped: {result.stopped})")
    table.add_column("set")
    table.add_column("PPL", justify="right")
    table.add_row("train (running, train mode)", f"{result.train_ppl:.2f}")
    table.add_row("valid", f"{result.valid_ppl:.2f}")
    table.add_row("test", "-" if result.test_ppl is None else f"{result.test_ppl:.2f}")
    return table


@guarded
def train_command(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Output folder: model.pt, last.pt, log.jsonl.",
            file_okay=False,
            rich_help_panel=RUN,
        ),
    ],
    corpus: Annotated[
        Optional[str],
        typer.Option(
            help="ptb or wikitext2 (files in --data-dir).",
            rich_help_panel=DATA,
        ),
    ] = None,
    data_dir: Annotated[
        Optional[Path],
        typer.Option(
            help="Folder with the corpus files (offline use).",
            exists=True,
            file_okay=False,
            rich_help_panel=DATA,
        ),
    ] = None,
    train: Annotated[
        Optional[List[str]],
        typer.Option(
            "--train",
            help="Training text, one sentence per line: a file or a quoted glob; repeat for more (one corpus).",
            rich_help_panel=DATA,
        ),
    ] = None,
    valid: Annotated[
        Optional[List[str]],
        typer.Option(
            "--valid",
            help="Validation text (model selection, LR decay): file or glob, repeatable.",
            rich_help_panel=DATA,
        ),
    ] = None,
    test: Annotated[
        Optional[List[str]],
        typer.Option(
            "--test",
            help="Test text, scored once at the end: file or glob, repeatable.",
            rich_help_panel=DATA,
        ),
    ] = None,
    sp_model: Annotated[
        Optional[Path],
        typer.Option(
            help="Use this sentencepiece model.",
            rich_help_panel=VOCAB,
            **ExistingFile,
        ),
    ] = None,
    sp_vocab_size: Annotated[
        Optional[int],
        typer.Option(
            help="Train a sentencepiece model with this many pieces.",
            min=8,
            rich_help_panel=VOCAB,
        ),
    ] = None,
    sp_sample_sentences: Annotated[
        int,
        typer.Option(
            help="Sentencepiece trains on a sample of at most this many sentences (its input_sentence_size).",
            min=101,
            rich_help_panel=VOCAB,
        ),
    ] = 1_000_000,
    vocab_size: Annotated[
        Optional[int],
        typer.Option(
            help="Word vocabulary: keep the N most frequent tokens (<eos>, <unk> included); the rest become <unk>.",
            min=3,
            rich_help_panel=VOCAB,
        ),
    ] = None,
    min_count: Annotated[
        int,
        typer.Option(
            help="Word vocabulary: keep only words seen at least this often.",
            min=1,
            rich_help_panel=VOCAB,
        ),
    ] = 1,
    cache_dir: Annotated[
        Optional[Path],
        typer.Option(
            help="Token caches (default OUT/cache); share one between runs to tokenize a corpus once.",
            file_okay=False,
            rich_help_panel=DATA,
        ),
    ] = None,
    valid_max_tokens: Annotated[
        Optional[int],
        typer.Option(
            help="Validate on the leading whole sentences of at most this many tokens.",
            min=1,
            rich_help_panel=DATA,
        ),
    ] = None,
    cell: Annotated[str, typer.Option(help="rnn, gru or lstm.", rich_help_panel=MODEL)] = "lstm",
    layers: Annotated[int, typer.Option(min=1, rich_help_panel=MODEL)] = 1,
    embed: Annotated[int, typer.Option(help="Embedding size E.", min=1, rich_help_panel=MODEL)] = 256,
    hidden: Annotated[int, typer.Option(help="Hidden size H.", min=1, rich_help_panel=MODEL)] = 256,
    tied: Annotated[
        bool,
        typer.Option(
            "--tied/--untied",
            help="Tie input and output embeddings (E == H).",
            rich_help_panel=MODEL,
        ),
    ] = False,
    dropout: Annotated[float, typer.Option(min=0.0, max=0.99, rich_help_panel=MODEL)] = 0.0,
    solver: Annotated[
        str,
        typer.Option(
            help="jacobi (K-token fixed point) or sequential.",
            rich_help_panel=MODEL,
        ),
    ] = "jacobi",
    iterations: Annotated[
        int,
        typer.Option(
            "--iterations",
            "-K",
            help="Jacobi iterations K = tokens of history.",
            min=1,
            rich_help_panel=MODEL,
        ),
    ] = 4,
    batch_size: Annotated[
        int,
        typer.Option(
            help="Global number of rows B.",
            min=1,
            rich_help_panel=OPTIM,
        ),
    ] = 20,
    bptt: Annotated[
        int,
        typer.Option(
            help="Tokens per truncated-BPTT segment.",
            min=1,
            rich_help_panel=OPTIM,
        ),
    ] = 35,
    epochs: Annotated[int, typer.Option(min=1, rich_help_panel=OPTIM)] = 10,
    lr: Annotated[
        Optional[float],
        typer.Option(
            help="Learning rate (unset: 1e-3 for adam, 20 for sgd).",
            min=0.0,
            rich_help_panel=OPTIM,
        ),
    ] = None,
    optimizer: Annotated[str, typer.Option(help="adam or sgd.", rich_help_panel=OPTIM)] = "adam",
    clip: Annotated[
        float,
        typer.Option(
            help="Gradient-norm clip (0: off).",
            min=0.0,
            rich_help_panel=OPTIM,
        ),
    ] = 0.25,
    lr_decay: Annotated[
        float,
        typer.Option(
            help="Divide the LR by this when valid PPL does not improve.",
            min=1.0,
            rich_help_panel=OPTIM,
        ),
    ] = 4.0,
    patience: Annotated[
        int,
        typer.Option(
            help="Stop after this many epochs without improvement.",
            min=1,
            rich_help_panel=OPTIM,
        ),
    ] = 3,
    seed: Annotated[int, typer.Option(rich_help_panel=RUN)] = 1,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.", rich_help_panel=RUN)] = "auto",
    threads: Annotated[
        Optional[int],
        typer.Option(
            help="CPU threads for torch (unset: torch chooses).",
            min=1,
            rich_help_panel=RUN,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue from OUT/last.pt.",
            rich_help_panel=RUN,
        ),
    ] = False,
    save_every_steps: Annotated[
        Optional[int],
        typer.Option(
            help="Also write OUT/last.pt every S steps within an epoch (resumable mid-epoch).",
            min=1,
            rich_help_panel=RUN,
        ),
    ] = None,
    max_minutes: Annotated[
        Optional[float],
        typer.Option(
            help="Wall-clock budget; stop, validate and save when spent.",
            min=0.0,
            rich_help_panel=RUN,
        ),
    ] = None,
) -> None:
    """Train a fixed-point RNN LM; writes OUT/model.pt (best by valid PPL), OUT/last.pt and OUT/log.jsonl."""
    import torch

    from rescorer.data.corpus import corpus_files
    from rescorer.errors import ConfigError
    from rescorer.training.distributed import launched_rank
    from rescorer.model.config import ModelConfig
    from rescorer.training.config import TrainConfig
    from rescorer.training.loop import train as run_training

    if corpus is not None:
        if data_dir is None or train is not None:
            raise ConfigError("--corpus needs --data-dir and excludes --train/--valid/--test")
        files = corpus_files(corpus, data_dir)
        train, valid, test = [files["train"]], files.get("valid"), files.get("test")
        if valid is None:
            raise ConfigError(f"no {corpus} validation file (run `fprescore data download {corpus}`)", path=data_dir)
        valid, test = [valid], None if test is None else [test]
    if train is None or valid is None:
        raise ConfigError("give --corpus with --data-dir, or --train and --valid")
    if threads is not None:
        torch.set_num_threads(threads)
    config = TrainConfig(
        train_path=train, valid_path=valid, test_path=test, out_dir=out,
        architecture=ModelConfig(
            vocab_size=1, cell=cell, layers=layers, embed_dim=embed, hidden_dim=hidden, tied=tied,
            dropout=dropout, solver=solver, iterations=iterations,
        ),
        batch_size=batch_size, bptt=bptt, epochs=epochs, lr=lr, optimizer=optimizer, lr_decay=lr_decay,
        patience=patience, clip=clip, seed=seed, device=device, resume=resume, max_minutes=max_minutes,
        sp_model=sp_model, sp_vocab_size=sp_vocab_size, sp_sample_sentences=sp_sample_sentences,
        max_vocab_size=vocab_size, min_count=min_count, cache_dir=cache_dir, save_every_steps=save_every_steps,
        valid_max_tokens=valid_max_tokens,
    )
    is_main = launched_rank() == 0
    result = run_training(config, RichReporter(enabled=is_main))
    if is_main:
        console.print(_result_table(result))
        console.print(f"model: {result.model_path}")
