"""Checkpoint files: atomic save, safe load, and loading weights into a model.

Formats understood by ``extract_state_dict``: ours (``{"model": state_dict, ...}``), the published
FairMOT / CenterTrack files (``{"epoch": e, "state_dict": state_dict, ...}``) and plain state
dicts (torchvision files); a ``module.`` prefix left by DataParallel is stripped.

Unpickling policy: ``load_checkpoint`` always uses ``torch.load(weights_only=True)``, which
cannot run code from the file. The only extra types it admits are NumPy arrays, dtypes and
scalars (our training checkpoints store NumPy's RNG state). A file needing anything else is
refused with a ``CheckpointError``; pass ``trusted=True`` to unpickle it fully, only for a file
you made yourself.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from utrack.errors import CheckpointError

_SHOW = 8  # names listed in error messages
_TORCH_VERSION = tuple(int(p) for p in re.findall(r"\d+", torch.__version__)[:2])


def _numpy_safe_globals() -> list[Any]:
    """NumPy array / scalar reconstruction helpers, under the names NumPy 1 and 2 pickle them."""
    core = getattr(np, "_core", None) or np.core
    multiarray = core.multiarray
    allowed: list[Any] = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    if _TORCH_VERSION >= (2, 6):  # (object, name) aliases: files written with NumPy 1.x
        allowed += [(multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
                    (multiarray.scalar, "numpy.core.multiarray.scalar")]
    allowed += [type(np.dtype(t)) for t in (np.uint8, np.int32, np.int64, np.uint32, np.uint64,
                                            np.float32, np.float64, np.bool_)]
    return allowed


def _short(exc: BaseException) -> str:
    """The informative part of a torch.load error, on one line."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation")[0]
    return " ".join(text.split())[:200]


def _allow_numpy() -> contextlib.AbstractContextManager[Any]:
    # torch < 2.5 has no allowlist: NumPy content is then refused like any other object
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    return contextlib.nullcontext() if safe_globals is None else safe_globals(_numpy_safe_globals())


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``payload`` with ``torch.save`` atomically and return the path.

    The bytes go to a temporary file in the same directory, are flushed and fsynced, then
    ``os.replace`` puts them in place: readers see the old file or the new one, never a partial
    one. On failure the previous file is untouched and the temporary file removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # not mkstemp: its files are mode 0600, and the checkpoint should get the usual umask mode
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; not every platform can open a directory, so skip quietly."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu", *,
                    trusted: bool = False) -> dict[str, Any]:
    """Read a checkpoint file into a dict.

    Raises ``CheckpointError`` naming ``path`` when it is missing, empty, truncated, not a torch
    file, holds objects ``weights_only`` loading refuses (see the module docstring; ``trusted``
    lifts that), or does not hold a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint is empty: {path}")
    try:
        if trusted:
            obj = torch.load(path, map_location=map_location, weights_only=False)
        else:
            with _allow_numpy():
                obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if refused:
            raise CheckpointError(
                f"{path}: holds a Python object safe loading refuses ({refused.group(1)}; only "
                "tensors, plain containers and NumPy arrays are allowed); if you made this file "
                "yourself, load it with trusted=True") from exc
        raise CheckpointError(f"{path}: not a readable torch checkpoint (corrupt, truncated or "
                              f"not a torch file: {_short(exc)})") from exc
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError... on bad bytes
        raise CheckpointError(f"{path}: not a readable torch checkpoint (corrupt, truncated or "
                              f"not a torch file: {type(exc).__name__}: {_short(exc)})") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict, found {type(obj).__name__}")
    return obj


def extract_state_dict(obj: Mapping[str, Any], source: str = "checkpoint"
                       ) -> dict[str, torch.Tensor]:
    """The model state dict inside a loaded checkpoint, with any ``module.`` prefix removed.

    ``obj`` is ours (``{"model": sd}``), a FairMOT/CenterTrack file (``{"state_dict": sd}``) or a
    plain state dict. ``source`` names the file in error messages.
    """
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: expected a dict, found {type(obj).__name__}")
    if isinstance(obj.get("model"), Mapping):
        sd, where = obj["model"], "model"
    elif isinstance(obj.get("state_dict"), Mapping):
        sd, where = obj["state_dict"], "state_dict"
    else:
        sd, where = obj, "top level"
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{source}: no state dict found ({where} entries {bad[:_SHOW]} are not tensors; "
            f"top-level keys: {list(obj)[:_SHOW]})")
    if not sd:
        raise CheckpointError(f"{source}: the state dict ({where}) is empty")
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        out[k[len("module."):] if k.startswith("module.") else k] = v
    return out


@dataclass
class LoadReport:
    """What a partial load did. Names are relative to the module loaded into."""

    loaded: list[str] = field(default_factory=list)
    skipped_shape: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(
        default_factory=list)  # (name, checkpoint shape, model shape)
    missing: list[str] = field(default_factory=list)  # in the model, not in the checkpoint
    unexpected: list[str] = field(default_factory=list)  # in the checkpoint, not in the model

    @property
    def complete(self) -> bool:
        return not (self.skipped_shape or self.missing or self.unexpected)

    def summary(self) -> str:
        parts = [f"loaded {len(self.loaded)}"]
        if self.skipped_shape:
            parts.append("shape mismatch " + ", ".join(
                f"{n} {tuple(a)} vs {tuple(b)}" for n, a, b in self.skipped_shape[:_SHOW]))
        if self.missing:
            parts.append(f"missing {len(self.missing)} (e.g. {self.missing[:_SHOW]})")
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)} (e.g. {self.unexpected[:_SHOW]})")
        return "; ".join(parts)


def _compare(model: nn.Module, state: Mapping[str, torch.Tensor]) -> LoadReport:
    own = model.state_dict()
    report = LoadReport()
    for name, tensor in state.items():
        if name not in own:
            report.unexpected.append(name)
        elif tuple(tensor.shape) != tuple(own[name].shape):
            report.skipped_shape.append((name, tuple(tensor.shape), tuple(own[name].shape)))
        else:
            report.loaded.append(name)
    report.missing = [n for n in own if n not in state]
    return report


def _as_state_dict(source: str | os.PathLike[str] | Mapping[str, Any]
                   ) -> tuple[dict[str, torch.Tensor], str]:
    if isinstance(source, Mapping):
        return extract_state_dict(source, "state dict"), "state dict"
    name = str(source)
    return extract_state_dict(load_checkpoint(source), name), name


def load_matching_weights(model: nn.Module,
                          state: str | os.PathLike[str] | Mapping[str, Any]) -> LoadReport:
    """Copy every checkpoint tensor whose name and shape match the model; report the rest.

    ``state`` is a path or anything ``extract_state_dict`` accepts. Used to fine-tune from
    weights whose heads differ (e.g. another re-ID embedding size).
    """
    sd, _ = _as_state_dict(state)
    report = _compare(model, sd)
    model.load_state_dict({n: sd[n] for n in report.loaded}, strict=False)
    return report


def load_model_weights(model: nn.Module, source: str | os.PathLike[str] | Mapping[str, Any],
                       strict: bool = True) -> LoadReport:
    """Load a checkpoint (path or dict) into ``model``.

    ``strict=True``: every name must be present on both sides with equal shapes, otherwise a
    ``CheckpointError`` lists the first missing / unexpected / mismatched names.
    ``strict=False``: names present on one side only are allowed, shape mismatches are not.
    """
    sd, name = _as_state_dict(source)
    report = _compare(model, sd)
    if report.skipped_shape or (strict and not report.complete):
        raise CheckpointError(f"{name} does not fit the model: {report.summary()}")
    model.load_state_dict(sd, strict=strict)
    return report


def load_backbone_weights(model: nn.Module, path: str | os.PathLike[str]) -> LoadReport:
    """Load ImageNet weights in torchvision naming into the backbone body ``model.base``.

    Classifier keys (``fc.*``, ``classifier.*``) are ignored; other names are matched as in
    ``load_matching_weights`` (the report's names are relative to the body). Raises
    ``CheckpointError`` when nothing matches, i.e. the file is for another backbone.
    """
    body = getattr(model, "base", None)
    if not isinstance(body, nn.Module):
        raise CheckpointError(f"{path}: the model has no backbone body ('base') to load into")
    sd = extract_state_dict(load_checkpoint(path), str(path))
    ignored = getattr(body, "ignored_pretrained_prefixes", ("fc.", "classifier."))
    sd = {k: v for k, v in sd.items() if not k.startswith(tuple(ignored))}
    report = _compare(body, sd)
    if not report.loaded:
        raise CheckpointError(
            f"{path}: no tensor matches the {getattr(model, 'backbone', 'model')} backbone "
            f"({report.summary()})")
    body.load_state_dict({n: sd[n] for n in report.loaded}, strict=False)
    return report
