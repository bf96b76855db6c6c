"""Model checkpoints: dicts of tensors and plain types, written atomically, verified on load.

``model.pt`` (the best model of a run) is self-contained::

    {"format": "fprescore-lm", "version": 1, "config": asdict(ModelConfig),
     "vocab": Vocabulary.to_state(), "model": state_dict,
     "weights_sha256": hex digest of the state_dict (see ``weights_checksum``)}

``last.pt`` has the same keys plus ``"training"`` (see ``rescorer.training.checkpoint``).
Checkpoints written before the checksum existed have no ``weights_sha256`` and
still load, guarded by the zip's own CRC-32s (which torch 2's loader skips); when
it is present it must match.

Both load with ``torch.load(weights_only=True)`` (on torch 1.13, whose weights-only
unpickler lacks the float opcode, with an equally strict loader): no arbitrary pickle.
"""
import dataclasses
import hashlib
import zipfile
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple, Union

import torch
from torch import Tensor

from rescorer.data.vocab import Vocabulary
from rescorer.errors import CheckpointError, ConfigError
from rescorer.formats.torch_pickle import LOAD_ERRORS, safe_torch_load
from rescorer.model.config import ModelConfig
from rescorer.model.lm import FixedPointLM
from rescorer.atomic import atomic_save
from rescorer.paths import PathLike

FORMAT = "fprescore-lm"
VERSION = 1
CHECKSUM_KEY = "weights_sha256"
# A crafted pickle may call the allowed rebuild functions with bad arguments.
_CRAFTED_ERRORS = (TypeError, IndexError, OverflowError)


def weights_checksum(weights: Mapping[str, Tensor]) -> str:
    """SHA-256 over a state_dict: for each name in sorted order, name, dtype, shape and raw bytes.

    Args:
      weights:
        Parameter name -> tensor (any device, dtype and shape).

    Returns:
      The hex digest (64 characters).
    """
    digest = hashlib.sha256()
    for name in sorted(weights):
        tensor = weights[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())  # (bytes,) uint8 view, no copy
    return digest.hexdigest()


def model_payload(model: FixedPointLM, vocab: Vocabulary) -> Dict[str, Any]:
    """The self-contained model checkpoint dict (weights cloned to CPU, with their checksum)."""
    weights = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": dataclasses.asdict(model.config),
        "vocab": vocab.to_state(),
        "model": weights,
        CHECKSUM_KEY: weights_checksum(weights),
    }


def save_checkpoint(path: PathLike, payload: Dict[str, Any]) -> None:
    """Write ``payload`` with ``torch.save`` via a temporary file and a rename."""
    atomic_save(path, lambda handle: torch.save(payload, handle))


def read_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Load a checkpoint dict without arbitrary code (``safe_torch_load``) and check its format.

    Raises:
      CheckpointError: naming ``path`` if it is missing, truncated, corrupt,
        not a dict of tensors/plain types, or not an fprescore LM checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint not found (expected a file written by `fprescore train`)", path=path)
    try:
        payload = safe_torch_load(path)
    except LOAD_ERRORS + _CRAFTED_ERRORS as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"cannot read checkpoint, truncated or corrupt ({first_line})", path=path) from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"not an fprescore LM checkpoint (expected format {FORMAT!r}, got {found!r})", path=path)
    if payload.get("version") != VERSION:
        raise CheckpointError(f"unsupported version (expected {VERSION}, got {payload.get('version')!r})", path=path)
    for key in ("config", "vocab", "model"):
        if not isinstance(payload.get(key), dict):
            raise CheckpointError(f"checkpoint lacks its {key!r} entry", path=path)
    _verify_weights(payload, path)
    return payload


def _verify_weights(payload: Dict[str, Any], path: Path) -> None:
    """Tensors only, the stored checksum (when present) matches, every float weight is finite."""
    weights = payload["model"]
    for name, tensor in weights.items():
        if not isinstance(name, str) or not isinstance(tensor, Tensor):
            raise CheckpointError(f"weights entry {name!r:.60} is not a named tensor", path=path)
    stored = payload.get(CHECKSUM_KEY)
    if stored is None:
        _verify_zip_crcs(path)
    else:
        actual = weights_checksum(weights)
        if stored != actual:
            raise CheckpointError(
                f"weights checksum mismatch, the file is damaged (expected sha256 {str(stored)[:16]}..., "
                f"got {actual[:16]}...)",
                path=path,
            )
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"weight {name} has {bad} non-finite value(s) (expected finite weights)", path=path)


def _verify_zip_crcs(path: Path) -> None:
    """Check every member's CRC-32 of a zip-format checkpoint (a legacy non-zip file passes)."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise CheckpointError(f"cannot read checkpoint, truncated or corrupt ({error})", path=path) from error
    if bad is not None:
        raise CheckpointError(f"the file is damaged (Bad CRC-32 for {bad}; it has no weights checksum)", path=path)


def model_from_payload(payload: Dict[str, Any], path: PathLike) -> Tuple[FixedPointLM, Vocabulary]:
    """Rebuild the model (CPU, eval mode) and vocabulary of a checkpoint dict.

    The config is checked against ``ModelConfig``'s bounds before any weight is allocated.

    Raises:
      CheckpointError: naming ``path`` if config, vocabulary or weights do not fit.
    """
    try:
        config = ModelConfig(**payload["config"])
        vocab = Vocabulary.from_state(payload["vocab"])
    except (TypeError, KeyError, ValueError, AttributeError, ConfigError) as error:
        raise CheckpointError(f"invalid model config or vocabulary ({error})", path=path) from error
    if vocab.size != config.vocab_size:
        raise CheckpointError(
            f"vocabulary does not fit the model (expected {config.vocab_size} tokens, got {vocab.size})", path=path
        )
    model = FixedPointLM(config)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise CheckpointError(f"weights do not fit the config ({str(error).splitlines()[0]})", path=path) from error
    model.eval()
    return model, vocab


def load_model(path: PathLike, device: Union[str, torch.device] = "cpu") -> Tuple[FixedPointLM, Vocabulary]:
    """Load ``model.pt`` (or ``last.pt``) for scoring.

    Args:
      path:
        A checkpoint written by ``fprescore train``.
      device:
        Where to put the model.

    Returns:
      (model in eval mode on ``device``, its vocabulary).

    Raises:
      CheckpointError: naming the file if missing, truncated, corrupt, damaged
        (checksum), non-finite, out of bounds or of the wrong format.
    """
    model, vocab = model_from_payload(read_checkpoint(path), path)
    return model.to(device), vocab
