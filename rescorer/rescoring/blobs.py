"""Values with many tensors as one blob: the workers' results on their way to the parent.

A pickled lattice list holds several small tensors per lattice, and unpickling
each one (its own storage) is what costs: 0.3-0.4 CPU s in the parent for
asr-dev's 240 lattices, serial between reading and rescoring. Here the value is
pickled with every tensor replaced by a reference (``persistent_id``) and the
tensors travel as one flat buffer per dtype (a numpy array: one memcpy to
unpickle, where a torch storage goes through ``torch.load``); unpacking makes each tensor a view
of its buffer (the readers' and the engine's tensors are never written in place).
"""
import io
import pickle
from typing import Any, Dict, List, Tuple, Union

import numpy as np
import torch

_Place = Tuple[str, int, int, Tuple[int, ...]]  # dtype name, offset, numel, shape


class _TensorPickler(pickle.Pickler):
    """Pickles everything but tensors, which it collects."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.tensors: List[torch.Tensor] = []

    def persistent_id(self, obj: Any):
        if isinstance(obj, torch.Tensor):
            self.tensors.append(obj)
            return len(self.tensors) - 1
        return None


def pack(value: Any) -> bytes:
    """``value`` (CPU tensors anywhere inside) as one blob for ``unpack``."""
    payload = io.BytesIO()
    pickler = _TensorPickler(payload)
    pickler.dump(value)
    parts: Dict[str, List[torch.Tensor]] = {}
    sizes: Dict[str, int] = {}
    places: List[_Place] = []
    for tensor in pickler.tensors:
        name = str(tensor.dtype).replace("torch.", "")
        flat = tensor.detach().reshape(-1)
        places.append((name, sizes.get(name, 0), flat.numel(), tuple(tensor.shape)))
        parts.setdefault(name, []).append(flat)
        sizes[name] = sizes.get(name, 0) + flat.numel()
    buffers = {name: _as_array(torch.cat(tensors)) for name, tensors in parts.items()}
    return pickle.dumps((payload.getvalue(), buffers, places), protocol=pickle.HIGHEST_PROTOCOL)


def _as_array(flat: torch.Tensor) -> Union[np.ndarray, torch.Tensor]:
    """A numpy array where numpy has the dtype (one memcpy to unpickle), else the tensor."""
    try:
        return flat.numpy()
    except TypeError:  # bfloat16 and the like
        return flat


def unpack(blob: bytes) -> Any:
    """The value of a ``pack`` blob made by our own worker (trusted: full unpickling)."""
    payload, arrays, places = pickle.loads(blob)
    buffers = {name: torch.from_numpy(array) if isinstance(array, np.ndarray) else array
               for name, array in arrays.items()}
    views = [buffers[name][offset:offset + count].view(shape)
             for name, offset, count, shape in places]
    unpickler = pickle.Unpickler(io.BytesIO(payload))
    unpickler.persistent_load = views.__getitem__
    return unpickler.load()
