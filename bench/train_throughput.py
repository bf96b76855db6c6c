"""Training throughput: Jacobi (K = 1, 2, 4, 8) vs sequential vs torch.nn's fused RNN.

Every method trains the same architecture (embedding, L recurrent layers, output
projection) on random tokens with truncated BPTT: forward, cross-entropy,
backward and an SGD step per batch, the carry detached between batches. The
torch.nn reference (cuDNN on GPU) gets no sentence resets; the others do
(a sentence start every ``--sentence-length`` tokens on average). Methods are
measured in interleaved rounds on the same process and the median round is
reported, which damps noise from other jobs on a shared machine.

Example (CPU):
    python bench/train_throughput.py --cell lstm --layers 1 --embed 256 --hidden 256 \\
        --vocab 10000 --batch-size 20 --bptt 35 --device cpu --steps 10
"""
import argparse
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from torch import Tensor, nn

from rescorer.model.config import ModelConfig
from rescorer.model.lm import FixedPointLM, detach_state

TORCH_RNNS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class TorchRNNLM(nn.Module):
    """The speed reference: embedding, torch.nn.{RNN,GRU,LSTM} (cuDNN on GPU), output."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim)
        self.rnn = TORCH_RNNS[config.cell](
            config.embed_dim, config.hidden_dim, num_layers=config.layers, batch_first=True
        )
        self.output = nn.Linear(config.hidden_dim, config.vocab_size)

    def forward(self, inputs: Tensor, resets: Tensor, state=None):  # resets ignored: no reset support
        hidden, state = self.rnn(self.embedding(inputs), state)  # (B, T, H)
        return self.output(hidden), state


def detach_torch_state(state):
    """Cut the graph of an nn.RNN/GRU (tensor) or nn.LSTM (tuple) state."""
    return tuple(part.detach() for part in state) if isinstance(state, tuple) else state.detach()


def make_batches(
    args: argparse.Namespace, device: torch.device, count: int = 4
) -> List[Tuple[Tensor, Tensor, Tensor]]:
    """A few random (inputs, targets, resets) batches of shape (B, T), reused cyclically."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(count):
        tokens = torch.randint(1, args.vocab, (args.batch_size, args.bptt + 1), generator=generator)
        starts = torch.rand(args.batch_size, args.bptt, generator=generator) < 1.0 / args.sentence_length
        batches.append((tokens[:, :-1].to(device), tokens[:, 1:].to(device), starts.to(device)))
    return batches


def make_step(
    model: nn.Module, detach: Callable, args: argparse.Namespace, device: torch.device
) -> Callable:
    """A closure running one training step on batch ``index`` and carrying the state."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = make_batches(args, device)
    carry: Dict[str, Optional[object]] = {"state": None}
    autocast = args.autocast and device.type == "cuda"

    def step(index: int) -> None:
        inputs, targets, resets = batches[index % len(batches)]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            logits, state = model(inputs, resets, carry["state"])
            loss = F.cross_entropy(logits.float().reshape(-1, args.vocab), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        carry["state"] = detach(state)

    return step


def build_methods(args: argparse.Namespace, device: torch.device) -> Dict[str, Callable]:
    """Method name -> training step closure, all with the same architecture."""

    def config(solver: str, iterations: int = 1) -> ModelConfig:
        return ModelConfig(
            vocab_size=args.vocab, cell=args.cell, layers=args.layers, embed_dim=args.embed,
            hidden_dim=args.hidden, dropout=args.dropout, solver=solver, iterations=iterations,
        )

    torch.manual_seed(0)
    methods = {}
    for iterations in args.iterations:
        model = FixedPointLM(config("jacobi", iterations)).to(device).train()
        methods[f"jacobi K={iterations}"] = make_step(model, detach_state, args, device)
    model = FixedPointLM(config("sequential")).to(device).train()
    methods["sequential (PyTorch loop)"] = make_step(model, detach_state, args, device)
    reference = TorchRNNLM(config("sequential")).to(device).train()
    reference_name = f"torch.nn.{TORCH_RNNS[args.cell].__name__}"
    methods[reference_name] = make_step(reference, detach_torch_state, args, device)
    return methods


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    methods: Dict[str, Callable], args: argparse.Namespace, device: torch.device
) -> Dict[str, List[float]]:
    """Seconds per step of each method, one entry per interleaved round."""
    seconds: Dict[str, List[float]] = {name: [] for name in methods}
    total = len(methods) * (args.warmup + args.rounds * args.steps)
    with Progress(transient=True) as progress:
        task = progress.add_task("training steps", total=total)
        for name, step in methods.items():
            for index in range(args.warmup):
                step(index)
                progress.advance(task)
        for _ in range(args.rounds):
            for name, step in methods.items():
                synchronize(device)
                start = time.perf_counter()
                for index in range(args.steps):
                    step(index)
                synchronize(device)
                seconds[name].append((time.perf_counter() - start) / args.steps)
                progress.advance(task, args.steps)
    return seconds


def render(seconds: Dict[str, List[float]], args: argparse.Namespace, device: torch.device) -> Table:
    """Rich table: median tokens/s per method and its ratio to the torch.nn reference."""
    tokens_per_step = args.batch_size * args.bptt
    rates = {name: tokens_per_step / statistics.median(values) for name, values in seconds.items()}
    reference_rate = list(rates.values())[-1]
    precision = "bf16 autocast" if args.autocast and device.type == "cuda" else "float32"
    title = (
        f"Training throughput, {args.layers}x{args.hidden} {args.cell}, E={args.embed}, V={args.vocab}, "
        f"B={args.batch_size}, T={args.bptt}, {device.type} {precision}"
    )
    table = Table(title=title)
    for column in ("method", "tokens/s (median)", "ms/step", "min..max tokens/s", "vs reference"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, values in seconds.items():
        table.add_row(
            name,
            f"{rates[name]:,.0f}",
            f"{1000 * statistics.median(values):.1f}",
            f"{tokens_per_step / max(values):,.0f}..{tokens_per_step / min(values):,.0f}",
            f"{rates[name] / reference_rate:.2f}x",
        )
    return table


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cell", choices=sorted(TORCH_RNNS), default="lstm")
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--embed", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--bptt", type=int, default=35)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round and method")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per method")
    parser.add_argument(
        "--iterations", type=lambda text: [int(k) for k in text.split(",")], default=[1, 2, 4, 8],
        help="comma-separated Jacobi K values",
    )
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--sentence-length", type=float, default=21.0, help="mean tokens between resets")
    parser.add_argument("--autocast", action="store_true", help="bf16 autocast (CUDA only)")
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    console = Console()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
    console.print(f"torch {torch.__version__}, {name}")
    seconds = measure(build_methods(args, device), args, device)
    console.print(render(seconds, args, device))


if __name__ == "__main__":
    main()
