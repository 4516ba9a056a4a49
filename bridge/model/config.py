"""Model configuration as plain dataclasses, so a checkpoint's config.json rebuilds the exact model."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from bridge.values import is_int, is_number, plural

# FSQ grids: "symmetric" (every level spread evenly over [-1, 1]; L = 2 splits at z = 0), or "shifted", the reference's
# bound that every FSQ model saved before the fsq_grid field was trained on (an even level off centre)
FSQ_GRIDS = ("symmetric", "shifted")
UNMASK_ORDERS = ("random", "confidence")  # which tokens a MaskGIT step commits first: any, or its most confident


def _code_count(quantizer: str, codes: int, levels: tuple[int, ...]) -> int:
    """How many codes a quantizer has: FSQ's are the product of its levels, whatever its `codes` field says."""
    return math.prod(levels) if quantizer == "fsq" else codes


@dataclass
class TokenizerConfig:
    """ST-ViViT VQ-VAE: frames -> (T, N) discrete tokens and back."""

    patch: int = 8  # pixels per patch side; tokens per frame = (H / patch) * (W / patch)
    dim: int = 128
    enc_depth: int = 4
    dec_depth: int = 4
    heads: int = 4
    codebook: int = 1024
    code_dim: int = 32
    quantizer: str = "vq"  # "vq" (cosine codebook) or "fsq"
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)  # used when quantizer == "fsq"; codebook = prod(levels)
    fsq_grid: str = "symmetric"  # FSQ's grid (FSQ_GRIDS); a config.json saved without it loads "shifted"
    window: int = 4  # temporal context (frames) of the causal encoder/decoder
    clip_len: int = 8  # training clip length
    commit: float = 0.25
    reset_after: int = 50  # steps a code may go unused before it is reset to an encoder output
    entropy_weight: float = 0.0  # batch code-entropy bonus (collapse guard)
    entropy_temp: float = 0.1
    dropout: float = 0.0


@dataclass
class LatentActionConfig:
    """Latent action model: pixels of x(<=t+1) -> one of `num_actions` codes for the step t -> t+1."""

    patch: int = 16
    dim: int = 128
    depth: int = 4
    heads: int = 4
    num_actions: int = 8
    code_dim: int = 16
    quantizer: str = "vq"
    fsq_levels: tuple[int, ...] = (2, 2, 2)
    fsq_grid: str = "symmetric"  # as TokenizerConfig.fsq_grid
    window: int = 16
    decoder_context: int = 1  # frames the decoder sees: 1 = x(t) only (codes must carry the motion), up to window
    motion_shifts: tuple[int, int] = (0, 0)  # (max |dx|, max |dy|) px: the decoder mixes shifted copies of x(t) per patch (0 = off)
    motion_features: int = 0  # R px: the encoder also sees which shift in [-R, R]^2 best maps x(t) onto x(t+1) (0 = off)
    shift_mask: float = 0.0  # > 0: score the decoder only on pixels the frame's best global shift explains within this |error| (0 = off)
    code_norm: bool = False  # standardise the encoder's outputs over the batch before quantizing (against code collapse)
    commit: float = 0.25
    entropy_weight: float = 0.1  # batch code-entropy bonus: keeps every action in use
    entropy_temp: float = 0.1  # softmax temperature of the cosine similarities for that bonus
    reset_after: int = 50
    dropout: float = 0.0


@dataclass
class DynamicsConfig:
    """MaskGIT dynamics over video tokens conditioned on latent actions."""

    dim: int = 192
    depth: int = 4
    heads: int = 6
    window: int = 16  # temporal context (frames) the model attends to; the rollout cache keeps window - 1
    clip_len: int = 16  # training clip length (also used for the latent action model)
    action_mode: str = "additive"  # "additive" (Genie) or "token" (one action token per frame)
    action_dropout: float = 0.1  # replaced by the learned null action, so guidance on actions works
    mask_min: float = 0.5  # per-sample mask rate ~ U(mask_min, 1)
    corrupt_max: float = 0.1  # random-token corruption of context, rising linearly to this on the last frame
    cond_dim: int = 0  # width of the prompt/event conditioning slot (0 = no slot)
    cond_prefix: bool = False  # also give the conditioning its own prefix token per frame
    steps: int = 8  # MaskGIT steps per frame at inference
    temperature: float = 1.0
    top_p: float = 1.0  # nucleus sampling: draw only from the likeliest tokens holding this much probability (1 = off)
    cfg: float = 1.0  # classifier-free guidance scale on actions (1 = off)
    unmask: str = "random"  # "random" order or "confidence"
    dropout: float = 0.0


@dataclass
class WorldConfig:
    """Everything that defines a world model: frame geometry and the three parts."""

    preset: str = "tiny"
    height: int = 64
    width: int = 64
    fps: float = 15.0
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    lam: LatentActionConfig = field(default_factory=LatentActionConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    action_names: list[str] | None = None  # display names of latent actions (default latent_0, ...)
    event_types: list[str] = field(default_factory=list)  # typed events the conditioning slot was trained on

    @property
    def tokens_per_frame(self) -> int:
        return (self.height // self.tokenizer.patch) * (self.width // self.tokenizer.patch)

    @property
    def grid(self) -> tuple[int, int]:
        return self.height // self.tokenizer.patch, self.width // self.tokenizer.patch

    @property
    def vocab(self) -> int:
        return _code_count(self.tokenizer.quantizer, self.tokenizer.codebook, self.tokenizer.fsq_levels)

    @property
    def num_actions(self) -> int:
        return _code_count(self.lam.quantizer, self.lam.num_actions, self.lam.fsq_levels)

    def latent_action_names(self) -> list[str]:
        return list(self.action_names) if self.action_names else [f"latent_{i}" for i in range(self.num_actions)]

    def validate(self) -> None:
        """Fail early with a message naming the bad field and the fix."""
        for part, patch in (("tokenizer", self.tokenizer.patch), ("lam", self.lam.patch)):
            if self.height % patch or self.width % patch:
                raise ValueError(
                    f"frame size {self.height}x{self.width} is not divisible by {part}.patch={patch}: "
                    f"resize the dataset or choose a preset whose patch divides it"
                )
        for part, c in (("tokenizer", self.tokenizer), ("lam", self.lam), ("dynamics", self.dynamics)):
            if c.dim % c.heads:
                raise ValueError(f"{part}.dim={c.dim} must be divisible by {part}.heads={c.heads}")
        for part, c in (("tokenizer", self.tokenizer), ("lam", self.lam)):
            if c.quantizer not in ("vq", "fsq"):
                raise ValueError(f"{part}.quantizer must be 'vq' or 'fsq', got {c.quantizer!r}")
        if self.lam.shift_mask < 0:
            raise ValueError(f"lam.shift_mask is a pixel-error threshold in [0, 1] (0 = off), got {self.lam.shift_mask}")
        if self.lam.motion_features < 0 or min(self.lam.motion_shifts) < 0:
            raise ValueError("lam.motion_features and lam.motion_shifts are pixel radii: use 0 (off) or more")
        d = self.dynamics
        if d.action_mode not in ("additive", "token"):
            raise ValueError(f"dynamics.action_mode must be 'additive' or 'token', got {d.action_mode!r}")
        if d.unmask not in UNMASK_ORDERS:
            raise ValueError(f"dynamics.unmask must be one of {UNMASK_ORDERS}, got {d.unmask!r}")
        if self.action_names is not None and len(self.action_names) != self.num_actions:
            raise ValueError(f"action_names has {plural(len(self.action_names), 'name')} for {plural(self.num_actions, 'latent action')}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WorldConfig":
        """Rebuild from config.json; unknown keys are an error (a newer/other format), missing keys take defaults,
        except an FSQ part's fsq_grid: saved before the field existed, it was trained on the shifted grid."""
        d = dict(d)
        subs = {"tokenizer": TokenizerConfig, "lam": LatentActionConfig, "dynamics": DynamicsConfig}
        for key, sub in subs.items():
            if key in d:
                old_fsq = isinstance(d[key], dict) and d[key].get("quantizer") == "fsq" and "fsq_grid" not in d[key]
                d[key] = _build(sub, {**d[key], "fsq_grid": "shifted"} if old_fsq else d[key])
        return _build(cls, d)


def _build(cls, d: dict[str, Any]):
    fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ValueError(f"{cls.__name__} got unknown fields {sorted(unknown)}: the checkpoint was written by another version")
    # JSON has no tuples: give tuple fields back their type, so a loaded config equals the one that was saved
    d = {k: (tuple(v) if isinstance(v, list) and fields[k].startswith("tuple") else v) for k, v in d.items()}
    for k, v in d.items():
        ok = _SCALARS.get(fields[k])
        if ok is not None and not ok(v):
            raise ValueError(f"{cls.__name__}.{k} must be {fields[k]}, got {v!r}: fix config.json (a hand edit?) or "
                             "retrain")
    return cls(**d)


_SCALARS = {  # field type -> check of a JSON value (bool is an int in Python, so it is kept out of int and float)
    "int": is_int,
    "float": is_number,
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
}
