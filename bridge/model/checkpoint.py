"""Checkpoints as plain files: model.safetensors + config.json + model_card.json (+ train_state.safetensors).

Every file is written atomically (temp file + os.replace) and nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from bridge.files import atomic_write_bytes, atomic_write_json
from bridge.model.config import WorldConfig
from bridge.values import is_int

FORMAT, VERSION = "worldbridge-checkpoint", 1
MODEL, CONFIG, CARD, STATE = "model.safetensors", "config.json", "model_card.json", "train_state.safetensors"
KINDS = ("tokenizer", "world")
MAX_HEADER = 100_000_000  # bytes of a safetensors JSON header at most (the safetensors library's own limit)


class CheckpointError(Exception):
    """A checkpoint is missing, incomplete or does not fit the model asked for."""


class OptimizerMismatch(CheckpointError):
    """A training state whose weights fit but whose optimizer does not: the weights can still seed a new run."""


def missing_text(path: str | Path, kind: str = "world") -> str:
    """The one wording for a checkpoint that is not there (in a training run cut short before its first one: that
    run's resume); a caller may append its own way out (e.g. the sandbox)."""
    stage = "tokenizer" if kind == "tokenizer" else "dynamics"
    if (Path(path) / STATE).is_file():
        with contextlib.suppress(CheckpointError):  # a damaged state keeps the wording; resuming names the damage
            stage = read_train_meta(Path(path)).get("stage", stage)
        return (f"{path} is a training run interrupted before its first checkpoint was complete: resume it with the "
                f"same `worldbridge train {stage} ... --out {path}` command, then give it again")
    return f"no checkpoint at {path}: train one with `worldbridge train {stage} ...`, or give the directory of one"


def missing(path: Path, kind: str = "world") -> CheckpointError:
    """A CheckpointError for a checkpoint that is not there."""
    return CheckpointError(missing_text(path, kind))


def _tensor_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    return st_save({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, metadata=metadata)


def _metadata(head: bytes) -> dict[str, str]:
    """The `__metadata__` of a safetensors file, from its first bytes (the 8-byte length, then the JSON header)."""
    n = int.from_bytes(head[:8], "little")
    return json.loads(head[8 : 8 + n]).get("__metadata__", {}) or {}


def _unreadable(path: Path, e: OSError) -> CheckpointError:
    """The system refused to read a checkpoint file (permissions, EIO): not damage, so not a re-train."""
    return CheckpointError(f"{path} cannot be read ({e.strerror or e}): make it readable (its permissions, the disk "
                           "or mount it is on), or copy the checkpoint again")


def _read_bytes(path: Path) -> bytes:
    """A checkpoint file's bytes; a CheckpointError naming it when the system refuses the read."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise _unreadable(path, e) from None


def _damaged(path: Path, why: object) -> CheckpointError:
    """A checkpoint file that is not a safetensors file (cut short, overwritten): copy or re-train it."""
    return CheckpointError(f"{path} is not a readable safetensors file ({why}): re-train or copy it again")


def _head(path: Path) -> bytes:
    """A safetensors file's first bytes, up to the end of its JSON header: its metadata without its tensors (a length
    past the file's end or over safetensors' own cap is damage, not a read of exabytes)."""
    try:
        with Path(path).open("rb") as f:
            head = f.read(8)
            n, left = int.from_bytes(head, "little"), os.fstat(f.fileno()).st_size - 8
            if n > min(left, MAX_HEADER):
                raise _damaged(path, f"its header claims {n} bytes, " + (
                    f"the file holds {max(left, 0)} after its length" if n > left else f"over the {MAX_HEADER} a "
                    "safetensors header may hold"))
            return head + f.read(n)
    except OSError as e:
        raise _unreadable(path, e) from None


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    data = _read_bytes(path)
    try:
        tensors = st_load(data)
        meta = _metadata(data)
    except (SafetensorError, ValueError) as e:
        raise _damaged(path, e) from e
    return tensors, meta


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """One safetensors file, written atomically (a training helper's weights, e.g. the decoder's critic)."""
    atomic_write_bytes(Path(path), _tensor_bytes(tensors))


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of one safetensors file; a clear CheckpointError when it is not one."""
    return _read_tensors(Path(path))[0]


def save_model(run_dir: Path, kind: str, config: WorldConfig, tensors: dict[str, torch.Tensor], card: dict[str, Any],
               step: int) -> None:
    """Write the loadable model: weights, config and card (weights first, so a config always has its weights)."""
    assert kind in KINDS, kind
    run_dir = Path(run_dir)
    atomic_write_bytes(run_dir / MODEL, _tensor_bytes(tensors, {"format": FORMAT, "kind": kind, "step": str(step)}))
    atomic_write_json(run_dir / CONFIG, {"format": FORMAT, "version": VERSION, "kind": kind, "step": step,
                                         "world": config.to_dict()})
    atomic_write_json(run_dir / CARD, {**card, "kind": kind, "step": step})


def read_json(path: Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A checkpoint's JSON file as a dict; a CheckpointError that names the file when it is damaged or incomplete."""
    data = _read_bytes(path)
    try:
        obj = json.loads(data.decode())
    except ValueError as e:  # UnicodeDecodeError included
        raise CheckpointError(f"{path} is damaged ({e}): copy the checkpoint again, or re-train it") from None
    lacking = [k for k in required if not isinstance(obj, dict) or k not in obj]
    if not isinstance(obj, dict) or lacking:
        raise CheckpointError(f"{path} is damaged (not a JSON object{' with ' + ', '.join(lacking) if lacking else ''}):"
                              " copy the checkpoint again, or re-train it")
    return obj


def _whole(path: Path, header: dict[str, Any], key: str, fix: str) -> int:
    """A header number (absent: 0) that must be whole and >= 0, so a hand-edited config is named, not loaded wrong."""
    v = header.get(key, 0)
    if not is_int(v) or v < 0:
        raise CheckpointError(f"{path / CONFIG}: {key} must be a whole number >= 0, got {v!r}: fix config.json ({fix}), "
                              "or copy the checkpoint again")
    return v


def _need(path: Path, name: str, kind: str | None) -> None:
    """A checkpoint file that is not there: a folder with none of them is no checkpoint, one with the other is partial
    (in a training run, a first save cut short: missing_text names its resume)."""
    if (path / name).is_file():
        return
    if any((path / other).is_file() for other in (MODEL, CONFIG)) and not (path / STATE).is_file():
        raise CheckpointError(f"{path} has no {name}: the checkpoint is incomplete; copy the whole folder again "
                              f"({MODEL}, {CONFIG}, {CARD}), or re-train")
    raise missing(path, kind or "world")


def read_config(path: Path, kind: str | None = None) -> tuple[WorldConfig, dict[str, Any], dict[str, Any]]:
    """-> (config, card, header) of a checkpoint directory, without its weights; clear errors throughout."""
    path = Path(path)
    _need(path, CONFIG, kind)
    header = read_json(path / CONFIG, ("format", "kind", "step", "world"))
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path / CONFIG} is not a WorldBridge checkpoint config (format={header.get('format')!r})")
    if _whole(path, header, "version", f"this WorldBridge writes {VERSION}") > VERSION:
        raise CheckpointError(f"{path} was written by a newer WorldBridge (format v{header['version']}): upgrade worldbridge")
    _whole(path, header, "step", "the step model_card.json names")
    if kind is not None and header["kind"] != kind:
        other = "worldbridge train dynamics" if kind == "world" else "worldbridge train tokenizer"
        raise CheckpointError(f"{path} holds a {header['kind']} checkpoint, not a {kind}: point at the output of `{other}`")
    card = read_json(path / CARD) if (path / CARD).is_file() else {}
    try:
        cfg = WorldConfig.from_dict(header["world"])
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise CheckpointError(f"{path / CONFIG} holds no usable model config ({e}): copy it again, or re-train") from None
    return cfg, card, header


def load_model(path: Path, kind: str | None = None) -> tuple[WorldConfig, dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """-> (config, tensors, card, header); clear errors for a missing, partial or wrong-kind checkpoint."""
    path = Path(path)
    _need(path, MODEL, kind)
    cfg, card, header = read_config(path, kind)
    tensors, meta = _read_tensors(path / MODEL)
    _same_step(path, meta, header)
    return cfg, tensors, card, header


def _same_step(path: Path, meta: dict[str, str], header: dict[str, Any]) -> None:
    """The weights (their metadata) and config.json must be of one save: a save cut short between them is named."""
    if meta.get("step") not in (None, str(header["step"])):
        raise CheckpointError(f"{path}: model.safetensors is at step {meta['step']} but config.json says "
                              f"{header['step']}; the run was interrupted mid-save: run training again to resume")


def whole_step(path: Path) -> int | None:
    """The step of a checkpoint whose weights, config.json and model_card.json are of one save, its tensors unread
    (a resume checks its run's this way); None when one is missing or damaged, or a save was cut short between them."""
    path = Path(path)
    try:
        _need(path, MODEL, None)
        _, card, header = read_config(path)
        _same_step(path, _metadata(_head(path / MODEL)), header)
    except (CheckpointError, ValueError, AttributeError):  # (a damaged header: ValueError, or JSON not an object)
        return None
    return header["step"] if card.get("step") == header["step"] else None


def load_into(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str = "", where: str = "checkpoint") -> None:
    """Copy `prefix.*` tensors into module; any missing/unexpected/mis-shaped key is a clear error."""
    sub = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    own = module.state_dict()
    missing_keys = sorted(set(own) - set(sub))
    extra = sorted(set(sub) - set(own))
    shapes = [f"{k}: {tuple(sub[k].shape)} vs model {tuple(own[k].shape)}" for k in own if k in sub and sub[k].shape != own[k].shape]
    if missing_keys or extra or shapes:
        raise CheckpointError(f"{where} does not match the model built from its config.json "
                              f"(missing {missing_keys[:5]}, unexpected {extra[:5]}, shapes {shapes[:5]}): "
                              "it was written by another version or edited; re-train or use a matching checkpoint")
    module.load_state_dict(sub)


def state_tensors(module: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in module.state_dict().items()}


# --- Resumable training state (weights + optimizer + counters) in ONE atomic file ---

def save_train_state(run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, meta: dict[str, Any],
                     extra: dict[str, torch.Tensor] | None = None) -> None:
    tensors = state_tensors(model, "model.")
    sd = opt.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v
            else:
                scalars.setdefault(str(pid), {})[k] = v
    for k, v in (extra or {}).items():
        tensors[f"extra.{k}"] = v
    meta = {**meta, "param_groups": sd["param_groups"], "opt_scalars": scalars}
    atomic_write_bytes(Path(run_dir) / STATE, _tensor_bytes(tensors, {"meta": json.dumps(meta)}))


def read_train_meta(run_dir: Path) -> dict[str, Any]:
    """What a training state was saved with (step, stage, and since 2026-11-24 the model config, kind and card), its
    tensors unread: a run whose first save was cut off before config.json still resumes from it."""
    path = Path(run_dir) / STATE
    return _train_meta(path, _head(path))


def _train_meta(path: Path, metadata: bytes | dict[str, str]) -> dict[str, Any]:
    """The meta object of a training state (its metadata, or the file's first bytes to read it from); anything else (no
    meta, a number, JSON that is not an object: a hand-made or damaged file) is a damaged state, not a traceback."""
    try:
        meta = json.loads((_metadata(metadata) if isinstance(metadata, bytes) else metadata)["meta"])
        if not isinstance(meta, dict):
            raise ValueError(f"its meta is {type(meta).__name__}, not an object")
        return meta
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path} is not a readable WorldBridge training state ({e}); use a new --out") from None


def load_train_state(run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """Restore weights + optimizer from run_dir; None when there is nothing to resume."""
    path = Path(run_dir) / STATE
    if not path.is_file():
        return None
    tensors, md = _read_tensors(path)
    meta = _train_meta(path, md)
    load_into(model, tensors, "model.", where=str(path))
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    for pid, st in meta.pop("opt_scalars").items():
        state.setdefault(int(pid), {}).update(st)
    try:
        opt.load_state_dict({"state": state, "param_groups": meta.pop("param_groups")})
    except (ValueError, KeyError) as e:
        raise OptimizerMismatch(f"{path}: optimizer state does not fit this model ({e}); use a new --out directory") from e
    extra = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    return meta, extra
