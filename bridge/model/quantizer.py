"""Discrete bottlenecks: a cosine-codebook VQ with dead-code reset (the default) and FSQ (a config switch).

Both return (quantized with straight-through gradients, indices, stats) where stats holds the auxiliary
`loss` to add to the objective, the batch code `entropy` (nats) to watch for collapse, and `entropy_bonus`
(batch entropy minus mean per-sample entropy) for models that subtract weight * bonus from their loss.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from bridge.model.config import FSQ_GRIDS


class VectorQuantizer(nn.Module):
    """VQ over L2-normalised codes (cosine similarity), commitment loss, and reset of long-unused codes."""

    def __init__(self, num_codes: int, dim: int, commit: float = 0.25, reset_after: int = 50, entropy_temp: float = 0.1):
        super().__init__()
        self.num_codes, self.dim, self.commit = num_codes, dim, commit
        self.reset_after, self.entropy_temp = reset_after, entropy_temp
        self.codebook = nn.Parameter(F.normalize(torch.randn(num_codes, dim), dim=-1))
        self.register_buffer("unused", torch.zeros(num_codes, dtype=torch.long))  # steps since last use
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self._counts: torch.Tensor | None = None  # uses this step (training only)
        self._recent: torch.Tensor | None = None  # the last batch's encoder outputs, candidates for resets

    def codes(self) -> torch.Tensor:
        return F.normalize(self.codebook, dim=-1)  # (K, d)

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        return self.codes()[idx]

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        shape = z.shape
        zf = F.normalize(z.reshape(-1, self.dim).float(), dim=-1)  # (M, d)
        if self.training and not bool(self.initialized):
            self._init_from(zf.detach())
        c = self.codes()
        sim = zf @ c.t()  # (M, K)
        idx = sim.argmax(-1)
        q = c[idx]
        loss = F.mse_loss(q, zf.detach()) + self.commit * F.mse_loss(zf, q.detach())
        q_st = zf + (q - zf).detach()
        p = F.softmax(sim / self.entropy_temp, dim=-1)  # (M, K) soft assignments
        avg = p.mean(0)  # (K,) soft code use over the batch
        entropy = -(avg * torch.log(avg + 1e-9)).sum()
        # confident per sample AND diverse over the batch: without the first term, identical encoder outputs
        # equidistant from all codes would maximise batch entropy while meaning nothing
        sample_entropy = -(p * torch.log(p + 1e-9)).sum(-1).mean()
        if self.training:
            with torch.no_grad():
                counts = torch.bincount(idx, minlength=self.num_codes)
                self._counts = counts if self._counts is None else self._counts + counts
                self._recent = zf.detach()[torch.randperm(zf.shape[0], device=zf.device)[: 4 * self.num_codes]]
        stats = {"loss": loss, "entropy": entropy, "entropy_bonus": entropy - sample_entropy}
        return q_st.view(*shape[:-1], self.dim).to(z.dtype), idx.view(shape[:-1]), stats

    @torch.no_grad()
    def _init_from(self, zf: torch.Tensor) -> None:
        """Collapse guard at step 1: start the codes on real encoder outputs, not random directions."""
        pick = torch.randint(0, zf.shape[0], (self.num_codes,), device=zf.device)
        new = zf[pick] + 0.01 * torch.randn(self.num_codes, self.dim, device=zf.device)
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(new, 0)
        self.codebook.data.copy_(F.normalize(new, dim=-1))
        self.initialized.fill_(True)

    @torch.no_grad()
    def reset_dead(self) -> dict[str, float] | None:
        """Call once per optimizer step: codes unused for `reset_after` steps jump to random encoder outputs of the
        last batch."""
        if self._counts is None:  # not used in training this step (e.g. a frozen tokenizer)
            return None
        counts, self._counts = self._counts, None
        ddp = dist.is_available() and dist.is_initialized()
        if ddp:  # every rank must agree on which codes are dead and on their new values
            dist.all_reduce(counts)
        usage = (counts > 0).float().mean().item()
        self.unused.copy_(torch.where(counts > 0, torch.zeros_like(self.unused), self.unused + 1))
        dead = (self.unused >= self.reset_after).nonzero().squeeze(1)
        if len(dead) and self._recent is not None:
            pick = torch.randint(0, self._recent.shape[0], (len(dead),), device=self._recent.device)
            new = self._recent[pick] + 0.01 * torch.randn(len(dead), self.dim, device=self._recent.device)
            if ddp:
                dist.broadcast(new, 0)
            self.codebook.data[dead] = F.normalize(new, dim=-1).to(self.codebook.dtype)
            self.unused[dead] = 0
        return {"usage": usage, "resets": int(len(dead))}


class FSQ(nn.Module):
    """Finite scalar quantization (Mentzer et al. 2023): no codebook to collapse, codes = grid points."""

    def __init__(self, levels: tuple[int, ...], grid: str = "symmetric"):
        super().__init__()
        if grid not in FSQ_GRIDS:
            raise ValueError(f"FSQ grid must be one of {FSQ_GRIDS}, got {grid!r}: fix fsq_grid in config.json")
        self.levels, self.grid = list(levels), grid
        self.dim = len(levels)
        self.num_codes = math.prod(levels)
        self.register_buffer("_levels", torch.tensor(levels, dtype=torch.float32), persistent=False)
        basis = [math.prod(levels[:i]) for i in range(len(levels))]
        self.register_buffer("_basis", torch.tensor(basis, dtype=torch.long), persistent=False)

    def _value(self, digits: torch.Tensor) -> torch.Tensor:
        """Digits 0..L-1 -> grid points: spread evenly over [-1, 1] (symmetric), or (d - L//2) / (L//2) (shifted)."""
        if self.grid == "shifted":
            half = self._levels.long() // 2
            return (digits - half) / half
        return digits * 2 / (self._levels - 1) - 1

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        return self._value(((idx[..., None] // self._basis) % self._levels.long()).float())  # (..., d)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        if self.grid == "shifted":  # the reference's bound, kept so FSQ checkpoints trained on it quantize as they were
            half, offset = (self._levels - 1) / 2, torch.where(self._levels % 2 == 0, 0.5, 0.0)
            b = torch.tanh(z.float() + torch.atanh(offset / half)) * half - offset  # in [-L//2, (L-1)//2]
            digits = b + (torch.round(b) - b).detach() + self._levels.long() // 2  # straight-through rounding
        else:
            # A symmetric grid: the reference's shifted bound puts an even level's split off centre (L = 2: at z = -3.8
            # with its eps, at -inf without, i.e. one code and no gradient); here L = 2 splits at z = 0
            b = (torch.tanh(z.float()) + 1) / 2 * (self._levels - 1)  # in [0, L-1]
            digits = b + (torch.round(b) - b).detach()  # straight-through rounding
        idx = (torch.minimum(digits.detach().long().clamp(min=0), self._levels.long() - 1) * self._basis).sum(-1)
        zero = z.new_zeros(())
        return self._value(digits).to(z.dtype), idx, {"loss": zero, "entropy": _index_entropy(idx, self.num_codes),
                                                      "entropy_bonus": zero}


def _index_entropy(idx: torch.Tensor, k: int) -> torch.Tensor:
    p = torch.bincount(idx.reshape(-1), minlength=k).float()
    p = p / p.sum().clamp(min=1)
    return -(p * torch.log(p + 1e-9)).sum()


def make_quantizer(kind: str, num_codes: int, dim: int, levels: tuple[int, ...], commit: float, reset_after: int,
                   entropy_temp: float = 0.1, *, fsq_grid: str) -> nn.Module:
    """The configured bottleneck; its `.dim` is the width the encoder must project to."""
    if kind == "fsq":
        return FSQ(levels, fsq_grid)
    return VectorQuantizer(num_codes, dim, commit, reset_after, entropy_temp)


def reset_dead_codes(model: nn.Module) -> dict[str, dict[str, float]]:
    """Run the dead-code reset of every VQ inside `model`; returns usage/resets per quantizer name."""
    out = {name: m.reset_dead() for name, m in model.named_modules() if isinstance(m, VectorQuantizer)}
    return {k: v for k, v in out.items() if v is not None}
