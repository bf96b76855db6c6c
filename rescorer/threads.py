"""One torch CPU thread for the lattice engine.

The graph algorithms and readers run many small tensor operations, one per
topological level or per file. Extra intra-op threads do not speed those up; on a
busy machine their spinning slows them down several times (reading asr-dev at load
2: 1.35 s with one thread, 7.3 s with two). The public entry points therefore run
with one thread and restore the caller's setting afterwards.
"""
import contextlib
import functools
from typing import Callable, Iterator, TypeVar

Function = TypeVar("Function", bound=Callable)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch CPU threads, then restore the old number."""
    import torch  # here, so that importing this module (the CLI does) stays cheap

    previous = torch.get_num_threads()
    if previous != count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if previous != count:
            torch.set_num_threads(previous)


def single_threaded(function: Function) -> Function:
    """``function`` run under ``torch_threads(1)``."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with torch_threads(1):
            return function(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
