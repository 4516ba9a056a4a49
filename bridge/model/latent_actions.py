"""Latent action model: infers which of a few discrete actions explains each frame-to-frame change.

Its design choices (residual decoder, decoder_context, motion_shifts, motion_features, shift_mask, code_norm) and
their measurements: docs/model.md, "Collapse guards, on from step 1". Only the encoder is needed after training.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from bridge.model.config import LatentActionConfig
from bridge.model.quantizer import make_quantizer
from bridge.model.st_transformer import STTransformer, patchify, unpatchify
from bridge.model.tokenizer import to_float


def with_diff(x: torch.Tensor) -> torch.Tensor:
    """(B, T, H, W, 3) -> (B, T, H, W, 6): each frame beside its difference from the previous one (0 for the first)."""
    d = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)
    return torch.cat([x, d], dim=-1)


PATCH_SHARPNESS, FRAME_SHARPNESS = 50.0, 200.0  # soft-min sharpness over mean |difference| (pixels in [0, 1])
MASK_RADIUS = 2  # px: the global shifts `shift_mask` tries


def shifted(x: torch.Tensor, shifts: list[tuple[int, int]], mx: int, my: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, S, C, H, W): x moved by each (dx, dy) (content goes right/down), edges replicated."""
    H, W = x.shape[-2:]
    pad = F.pad(x, (mx, mx, my, my), mode="replicate")
    return torch.stack([pad[:, :, my - dy:my - dy + H, mx - dx:mx - dx + W] for dx, dy in shifts], 1)


def shift_cost(prev: torch.Tensor, cur: torch.Tensor, radius: int) -> torch.Tensor:
    """(B, T, H, W, 3) pairs -> (BT, S, H, W): per pixel, mean |shift(prev) - cur| for the S = (2R+1)^2 shifts."""
    shifts = [(dx, dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    prev, cur = (v.flatten(0, 1).permute(0, 3, 1, 2) for v in (prev, cur))  # (BT, 3, H, W)
    return (shifted(prev, shifts, radius, radius) - cur[:, None]).abs().mean(2)


def motion_cost(x: torch.Tensor, radius: int, patch: int) -> torch.Tensor:
    """(B, T, H, W, 3) in [0, 1] -> (B, T, N, 2S): per patch and per frame, a soft-min over the S = (2R+1)^2 shifts
    of mean |shift(x(t-1)) - x(t)|; frame 0 is compared with itself (no motion)."""
    B, T, H, W, _ = x.shape
    cost = shift_cost(torch.cat([x[:, :1], x[:, :-1]], 1), x, radius)  # (BT, S, H, W)
    per_patch = F.avg_pool2d(cost, patch).flatten(2).transpose(1, 2)  # (BT, N, S)
    local = (-PATCH_SHARPNESS * per_patch).softmax(-1)
    whole = (-FRAME_SHARPNESS * per_patch.mean(1, keepdim=True)).softmax(-1).expand_as(local)
    return torch.cat([local, whole], -1).reshape(B, T, -1, 2 * cost.shape[1])


def shift_explained(x: torch.Tensor, radius: int, threshold: float) -> torch.Tensor:
    """(B, T, H, W, 3) in [0, 1] -> (B, T-1, H, W, 1): 1 where the whole frame's best shift of x(t) (within ±radius)
    matches x(t+1) to within `threshold`; the camera pan and the static scene, not rain, flicker or enemies."""
    B, T, H, W, _ = x.shape
    cost = shift_cost(x[:, :-1], x[:, 1:], radius)  # (B(T-1), S, H, W)
    best = cost.mean((2, 3)).argmin(1)
    return (cost[torch.arange(cost.shape[0]), best] < threshold).float().reshape(B, T - 1, H, W, 1)


class LatentActionModel(nn.Module):
    """Pixels (B, T, H, W, 3) -> latent action indices (B, T-1); index t labels the step from frame t to t+1."""

    def __init__(self, cfg: LatentActionConfig, height: int, width: int):
        super().__init__()
        self.cfg, self.height, self.width = cfg, height, width
        p = cfg.patch
        n = (height // p) * (width // p)
        self.quant = make_quantizer(cfg.quantizer, cfg.num_actions, cfg.code_dim, cfg.fsq_levels, cfg.commit,
                                    cfg.reset_after, cfg.entropy_temp, fsq_grid=cfg.fsq_grid)
        self.motion_dim = 2 * (2 * cfg.motion_features + 1) ** 2 if cfg.motion_features else 0
        self.enc_in = nn.Linear(p * p * 6 + self.motion_dim, cfg.dim)
        self.action_slot = nn.Parameter(torch.randn(1, 1, 1, cfg.dim) * 0.02)  # prefix token read out as the action
        self.encoder = STTransformer(cfg.dim, cfg.depth, cfg.heads, n + 1, cfg.window, cfg.dropout)
        self.to_code = nn.Linear(cfg.dim, self.quant.dim)
        # outputs that all point one way would all take one code; standardised over the batch they cannot
        self.code_norm = nn.BatchNorm1d(self.quant.dim, affine=False) if cfg.code_norm else None
        self.dec_in = nn.Linear(p * p * 3, cfg.dim)
        self.action_up = nn.Linear(self.quant.dim, cfg.dim)
        self.decoder = STTransformer(cfg.dim, cfg.depth, cfg.heads, n, max(1, min(cfg.decoder_context, cfg.window)),
                                     cfg.dropout)
        self.dec_out = nn.Linear(cfg.dim, p * p * 3)
        mx, my = cfg.motion_shifts
        self.shifts = [(dx, dy) for dy in range(-my, my + 1) for dx in range(-mx, mx + 1)] if mx or my else []
        if self.shifts:
            self.dec_motion = nn.Linear(cfg.dim, len(self.shifts))
            nn.init.zeros_(self.dec_motion.weight)  # uniform mixture at first
            nn.init.zeros_(self.dec_motion.bias)
        nn.init.zeros_(self.dec_out.weight)  # start by predicting "nothing moves" (relative loss 1.0)
        nn.init.zeros_(self.dec_out.bias)

    def _motion(self, x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """Per-patch softmax mixture of (shift(x) - x) over the configured pixel shifts (edges replicate)."""
        H, W, p = self.height, self.width, self.cfg.patch
        mx, my = self.cfg.motion_shifts
        moved = shifted(x.flatten(0, 1).permute(0, 3, 1, 2), self.shifts, mx, my)  # (BT, S, 3, H, W)
        moved = moved.permute(0, 1, 3, 4, 2).reshape(*x.shape[:2], len(self.shifts), H, W, 3) - x[:, :, None]
        w = self.dec_motion(d).float().softmax(-1)  # (B, T, N, S)
        w = w.view(*w.shape[:2], H // p, W // p, -1).repeat_interleave(p, 2).repeat_interleave(p, 3)  # (B, T, H, W, S)
        return torch.einsum("btshwc,bthws->bthwc", moved, w)

    @property
    def num_actions(self) -> int:
        return self.quant.num_codes

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, T, H, W, 3) -> the encoder's continuous output (B, T-1, d) before quantizing."""
        xf = to_float(frames)
        h = patchify(with_diff(xf), self.cfg.patch)
        if self.motion_dim:
            h = torch.cat([h, motion_cost(xf, self.cfg.motion_features, self.cfg.patch).to(h.dtype)], -1)
        h = self.enc_in(h)  # (B, T, N, E)
        B, T = h.shape[:2]
        h = torch.cat([self.action_slot.expand(B, T, 1, -1), h], dim=2)  # (B, T, 1+N, E)
        z = self.to_code(self.encoder(h)[:, 1:, 0])  # (B, T-1, d): frame t+1's slot saw x(<=t+1)
        if self.code_norm is not None:
            z = self.code_norm(z.flatten(0, 1).float()).view(z.shape).to(z.dtype)
        return z

    def encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """frames (B, T, H, W, 3) -> indices (B, T-1), codes (B, T-1, d), quantizer stats."""
        q, idx, stats = self.quant(self.features(frames))
        return idx, q, stats

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Residual-prediction loss + quantizer loss - entropy bonus."""
        x = to_float(frames)
        idx, q, stats = self.encode(x)
        # --- Decode: x(t - context + 1 .. t) + code(t) -> x(t+1) - x(t) ---
        h = self.dec_in(patchify(x[:, :-1], self.cfg.patch))  # (B, T-1, N, E)
        h = h + self.action_up(q)[:, :, None]
        d = self.decoder(h)
        resid = unpatchify(self.dec_out(d), self.cfg.patch, self.height, self.width)  # (B, T-1, H, W, 3)
        if self.shifts:
            resid = resid + self._motion(x[:, :-1], d)
        target = x[:, 1:] - x[:, :-1]
        if self.cfg.shift_mask > 0:
            # only the pixels a global shift explains: there the change is the camera's (the player's) doing,
            # and the code cannot win by describing weather or enemies (docs/model.md)
            with torch.no_grad():
                m = shift_explained(x, MASK_RADIUS, self.cfg.shift_mask)
            err = ((resid.float() - target).pow(2) * m).flatten(2).sum(-1)
            rel = (err / ((target.pow(2) * m).flatten(2).sum(-1) + 1.0)).mean()
        else:
            # per transition, relative to its own change (1.0 = "nothing moves"): a small player move counts as
            # much as a screen full of falling snow, and the loss is scale-free against the entropy bonus
            err = (resid.float() - target).pow(2).flatten(2).mean(-1)  # (B, T-1)
            rel = (err / (target.pow(2).flatten(2).mean(-1) + 1e-3)).mean()
        loss = rel + stats["loss"] - self.cfg.entropy_weight * stats["entropy_bonus"]
        return {"loss": loss, "rel_mse": rel, "vq": stats["loss"], "entropy": stats["entropy"], "actions": idx}
