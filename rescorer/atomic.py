"""Atomic file writing: a temporary file in the same folder, then a rename.

Readers never see a half-written file, and a crash leaves the old file (if
any) in place. Used by every package that writes files (lattice, formats,
outputs, training), so it lives at the top of the package and imports none
of them.

Temporary files are named ``.<name>.<host>.<pid>.<random>.tmp`` next to the
target: unique per writer, hidden (folder readers skip dot files), and
traceable to the process that made them. A writer killed with ``kill -9``
leaves its temporary file behind; the next atomic write of the same target
on the same host removes every such leftover whose process is gone, and
keeps those of live processes (a concurrent writer's file is never
deleted). Leftovers of other hosts (a shared file system) are left alone,
since their processes cannot be checked from here.
"""
import contextlib
import os
import socket
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from rescorer.paths import PathLike

_SUFFIX = ".tmp"


def _host() -> str:
    """This host's name, with the characters a temp-name field cannot hold replaced."""
    return socket.gethostname().replace(".", "_").replace(os.sep, "_") or "host"


def _temp_prefix(path: Path) -> str:
    """The temp-name prefix of ``path`` for this host, up to (excluding) the pid."""
    return f".{path.name}.{_host()}."


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (it may belong to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(path: PathLike) -> int:
    """Delete leftover temporary files of ``path`` whose writing process is gone.

    Args:
      path:
        The target whose ``.<name>.<host>.<pid>.<random>.tmp`` siblings are checked.

    Returns:
      How many leftovers were deleted.
    """
    path = Path(path)
    prefix = _temp_prefix(path)
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path.parent):
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(_SUFFIX)):
                continue
            pid_text = name[len(prefix):].split(".", 1)[0]
            if not pid_text.isdigit() or process_alive(int(pid_text)):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
    return removed


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
      Leftover temporary files of dead writers of ``path`` are removed first.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    fd, tmp_name = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=_SUFFIX,
                                    dir=path.parent)
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
