"""Atomic file writing: a temporary file in the same folder, then a rename.

Readers never see a half-written file, and a crash leaves the old file (if
any) in place.
"""
import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Union
from rescorer.paths import PathLike


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` and rename it onto ``path`` on success.

    Args:
      path:
        The final destination; its parent folder is created if needed.
      mode:
        "w" (text) or "wb" (binary).
      kwargs:
        Passed to ``open`` (e.g. ``encoding``).

    Caution:
      On an exception the temporary file is removed and ``path`` is untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp_name, 0o666 & ~_current_umask())  # mkstemp makes 0600; behave like open()
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _current_umask() -> int:
    """The process umask (reading it requires setting it; restored at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_save(path: PathLike, save: Callable[[IO], None]) -> None:
    """Call ``save(binary_handle)`` into a temporary file, then rename onto ``path``.

    Example: ``atomic_save(p, lambda f: torch.save(obj, f))``.
    """
    with atomic_open(path, "wb") as handle:
        save(handle)
