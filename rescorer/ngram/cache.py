"""Load an ARPA n-gram LM, with an optional binary cache and a rich progress bar.

The cache is a ``torch.save`` of the sorted tables (``tables.OrderTable``) and
the vocabulary, plain tensors, numbers and strings only, so it loads without
arbitrary code (``formats.torch_pickle.safe_torch_load``: weights_only, or the
equally strict loader on torch 1.13, whose weights-only unpickler lacks floats). It lives in a folder the caller names (the
ARPA's own folder may be read-only), as ``<arpa name>.<hash of its absolute
path>.ngram.pt``, and is valid while the ARPA file's size and modification
time (ns) and the ``<unk>`` setting are those it records; otherwise, or when
it is unreadable, the ARPA is parsed again and the cache rewritten
atomically.
"""
import contextlib
import hashlib
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import torch

from rescorer.errors import InputFormatError
from rescorer.formats.torch_pickle import LOAD_ERRORS, safe_torch_load
from rescorer.ngram.arpa import ProgressCallback, read_arpa
from rescorer.ngram.model import DEFAULT_UNK_LOG10_PROB, ArpaVocabulary, NgramLM
from rescorer.ngram.tables import OrderTable
from rescorer.atomic import atomic_save
from rescorer.paths import PathLike

CACHE_FORMAT = "fprescore-ngram"
CACHE_VERSION = 1


def load_ngram(
    path: PathLike,
    cache_dir: Optional[PathLike] = None,
    progress: Optional[ProgressCallback] = None,
    unk_log10_prob: float = DEFAULT_UNK_LOG10_PROB,
) -> NgramLM:
    """Load an ARPA LM, from the cache when it is up to date.

    Args:
      path:
        The ``.arpa`` or ``.arpa.gz`` file.
      cache_dir:
        Folder for the binary cache, or None for no cache.
      progress:
        Optional ``progress(bytes_read, total_bytes)`` while parsing.
      unk_log10_prob:
        log10 P(<unk>) when the ARPA has no ``<unk>`` (see ``rescorer.ngram.model``).

    Returns:
      The model.

    Raises:
      InputFormatError: naming the file if it is missing or not a valid ARPA file.
    """
    path = Path(path)
    stamp = _source_stamp(path, unk_log10_prob)
    cache_path = None if cache_dir is None else cache_file(path, cache_dir)
    if cache_path is not None:
        cached = _read_cache(cache_path, stamp)
        if cached is not None:
            return cached
    model = NgramLM.from_arpa(read_arpa(path, progress), path, unk_log10_prob)
    if cache_path is not None:
        payload = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "source": stamp,
                   "words": list(model.vocabulary.words),
                   "keys": [table.keys for table in model.tables],
                   "log_probs": [table.log_probs for table in model.tables],
                   "backoffs": [table.backoffs for table in model.tables]}
        atomic_save(cache_path, lambda handle: torch.save(payload, handle))
    return model


def cache_file(path: PathLike, cache_dir: PathLike) -> Path:
    """The cache file of the ARPA ``path`` inside ``cache_dir``."""
    path = Path(path)
    digest = hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:12]
    return Path(cache_dir) / f"{path.name}.{digest}.ngram.pt"


def _source_stamp(path: Path, unk_log10_prob: float) -> Dict[str, Any]:
    """What the cache must match: size and mtime of the ARPA, and the <unk> setting."""
    try:
        info = path.stat()
    except OSError as error:
        raise InputFormatError(f"cannot read the ARPA file ({error.strerror})", path=path) from error
    return {"size": int(info.st_size), "mtime_ns": int(info.st_mtime_ns),
            "unk_log10_prob": float(unk_log10_prob)}


def _read_cache(cache_path: Path, stamp: Dict[str, Any]) -> Optional[NgramLM]:
    """The cached model, or None if the cache is absent, stale or unreadable."""
    if not cache_path.is_file():
        return None
    try:
        payload = safe_torch_load(cache_path)
    except LOAD_ERRORS:
        return None  # unreadable or truncated: rebuilt and rewritten by the caller
    if not isinstance(payload, dict) or payload.get("format") != CACHE_FORMAT \
            or payload.get("version") != CACHE_VERSION or payload.get("source") != stamp:
        return None
    tables = [OrderTable(keys, log_probs, backoffs) for keys, log_probs, backoffs in
              zip(payload["keys"], payload["log_probs"], payload["backoffs"])]
    return NgramLM(ArpaVocabulary(payload["words"], path=cache_path), tables)


@contextlib.contextmanager
def rich_load_progress(description: str = "reading ARPA") -> Iterator[ProgressCallback]:
    """A rich progress bar (bytes of the file) as a ``ProgressCallback``.

    Example::

        with rich_load_progress() as progress:
            model = load_ngram("lm.arpa.gz", cache_dir="exp/cache", progress=progress)
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
