"""``torch.save``-d dicts holding k2's pickled ragged tensors, loaded safely and written, without k2.

Loading: ``torch.load(weights_only=True)`` is tried first. k2 pickles a ragged
``aux_labels`` as the global ``_k2.ragged.RaggedTensor``, which weights-only
loading refuses, so such files are loaded again through a restricted unpickler
that reads the zip records itself, maps only that class to ``RaggedStandIn``,
rebuilds tensors with plain views and refuses every other global.

Writing: ``save_torch_dict`` pickles a ``RaggedStandIn`` exactly as k2 1.23.4
pickles its ``RaggedTensor`` (global ``_k2.ragged.RaggedTensor``, ``NEWOBJ`` with
no arguments, ``BUILD`` with the state), so k2 loads it with ``torch.load``.
"""
import copyreg
import inspect
import io
import pickle
import struct
import types
import warnings
import zipfile
from pathlib import Path
from typing import IO, Any, Tuple, Union

import torch
from torch import Tensor

from rescorer.errors import InputFormatError

_K2_RAGGED_GLOBALS = {("_k2.ragged", "RaggedTensor"), ("k2.ragged", "RaggedTensor")}
# torch's legacy storage class names in a zip checkpoint's persistent ids.
_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}

_HAS_WEIGHTS_ONLY = "weights_only" in inspect.signature(torch.load).parameters


class RaggedStandIn:
    """k2's ``RaggedTensor`` without k2: its pickled state, read or to be written.

    Attributes:
      state:
        k2's state tuple; for 2 axes ``(row_splits, 'row_ids1', values)``, both 1-D
        int32 tensors (row_splits has one entry more than there are rows).
    """

    @classmethod
    def from_parts(cls, row_splits: Tensor, values: Tensor) -> "RaggedStandIn":
        """A 2-axis ragged tensor.

        Args:
          row_splits:
            1-D integer tensor of shape (rows + 1,), non-decreasing from 0.
          values:
            1-D integer tensor of shape (row_splits[-1],).
        """
        ragged = cls()
        ragged.state = (row_splits.to(torch.int32), "row_ids1", values.to(torch.int32))
        return ragged

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __reduce_ex__(self, protocol: int) -> Tuple[Any, ...]:
        # As k2 does: cls.__new__(cls) then __setstate__(state) when loaded.
        return copyreg.__newobj__, (RaggedStandIn,), self.state


class _K2Pickler(pickle._Pickler):  # the Python pickler: its save_global can be overridden
    """Pickles the class ``RaggedStandIn`` under k2's global name, everything else as usual."""

    def save_global(self, obj: Any, name: Any = None) -> None:
        if obj is RaggedStandIn:
            self.write(pickle.GLOBAL + b"_k2.ragged\nRaggedTensor\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


# torch.save only uses pickle_module.Pickler (and __name__) for zip-format files.
_K2_PICKLE_MODULE = types.ModuleType("fprescore_k2_pickle")
_K2_PICKLE_MODULE.Pickler = _K2Pickler


def save_torch_dict(content: dict, handle: IO[bytes]) -> None:
    """``torch.save(content, handle)`` with ``RaggedStandIn`` values written as k2's class."""
    torch.save(content, handle, pickle_module=_K2_PICKLE_MODULE)


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: Any, stride: Any,
                    *unused: Any) -> torch.Tensor:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: a view of a flat storage tensor."""
    return storage.as_strided(tuple(size), tuple(stride), offset)


def _ordered_dict(*args: Any) -> dict:
    """Stand-in for ``collections.OrderedDict`` (only backward-hook dicts use it)."""
    return dict(*args)


class _RestrictedUnpickler(pickle.Unpickler):
    """Reads a zip checkpoint's ``data.pkl``, allowing only tensor rebuilding and k2's ragged.

    Args:
      handle:
        The pickle stream.
      archive:
        The open zip file, for the storage records.
      prefix:
        The record-name prefix (``archive/`` for ``foo/data.pkl``).
    """

    def __init__(self, handle: IO[bytes], archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(handle, encoding="utf-8")
        self.archive = archive
        self.prefix = prefix

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _K2_RAGGED_GLOBALS:
            return RaggedStandIn
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return _ordered_dict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        """A storage record as a flat tensor of its dtype."""
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"
                and isinstance(pid[1], torch.dtype)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        data = bytearray(self.archive.read(f"{self.prefix}data/{pid[2]}"))
        if not data:
            return torch.zeros(0, dtype=pid[1])
        return torch.frombuffer(data, dtype=pid[1])


def _load_restricted(path: Union[str, Path]) -> Any:
    """Load a zip-format ``torch.save`` file with ``_RestrictedUnpickler``."""
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("data.pkl")]
        if len(pickles) != 1:
            raise pickle.UnpicklingError(f"expected one data.pkl record, found {len(pickles)}")
        prefix = pickles[0][: -len("data.pkl")]
        with archive.open(pickles[0]) as handle:
            return _RestrictedUnpickler(io.BytesIO(handle.read()), archive, prefix).load()


# What loading a corrupt pickle raises (torch's weights-only unpickler pops from an
# empty stack with IndexError, indexes past its memo with KeyError, calls allowed
# rebuild functions with wrong arguments with TypeError, asserts on a malformed
# persistent id with AssertionError, ...).
LOAD_ERRORS = (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError,
               IndexError, TypeError, OverflowError, AssertionError, struct.error,
               pickle.UnpicklingError, zipfile.BadZipFile, UnicodeDecodeError)


def load_torch_dict(path: Union[str, Path]) -> dict:
    """Load a dict saved with ``torch.save`` without running arbitrary code.

    Raises:
      InputFormatError: the file is missing, truncated, corrupt, holds a global
        outside the allow-list, or is not a dict.
    """
    try:
        content = safe_torch_load(path)
    except LOAD_ERRORS as error:
        raise InputFormatError(f"cannot load as a torch file ({type(error).__name__}: "
                               f"{_first_line(error)}; truncated or corrupt?)", path=path) from error
    if not isinstance(content, dict):
        raise InputFormatError(f"expected a dict saved with torch.save, got "
                               f"{type(content).__name__}", path=path)
    return content


def safe_torch_load(path: Union[str, Path]) -> Any:
    """``torch.load`` without arbitrary code: weights_only, else our restricted loader.

    The restricted loader takes over when the weights-only unpickler refuses the
    file: for k2's ragged class, and on torch 1.13, whose weights-only unpickler
    lacks opcodes such as BINFLOAT (any Python float in the file). It is just as
    strict: only tensor rebuilding, plain containers and k2's ragged class.
    (torch 1.13's ``torch.load`` ignores ``pickle_module`` unless weights_only,
    so the restricted path reads the zip records itself.)

    Raises:
      The loaders' own errors (see ``LOAD_ERRORS``) for missing, truncated,
      corrupt or disallowed content.
    """
    if _HAS_WEIGHTS_ONLY:
        try:
            with warnings.catch_warnings():  # a damaged file makes torch warn, then raise
                warnings.simplefilter("ignore", UserWarning)
                return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            pass
    return _load_restricted(path)


def _first_line(error: BaseException) -> str:
    """The first line of an exception's message, shortened."""
    text = str(error).strip().splitlines()
    return text[0][:200] if text else "no message"
