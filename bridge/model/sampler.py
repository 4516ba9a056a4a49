"""MaskGIT decoding of ONE new frame on top of the dynamics' KV cache of past frames."""

from __future__ import annotations

import functools
import math
import time

import torch

from bridge.model.dynamics import Dynamics
from bridge.model.st_transformer import KVCache
from bridge.values import plural


# one generator for the whole batch, or one per batch row (batched sessions keep their own random streams)
Generators = torch.Generator | list[torch.Generator] | None


def mask_schedule(steps: int, tokens: int) -> list[int]:
    """Tokens still masked after each step: cosine gamma(r) = cos(pi/2 r), at least one revealed per step, 0 at the end."""
    if not 1 <= steps <= tokens:
        raise ValueError(f"MaskGIT steps must be between 1 and the tokens per frame ({tokens}), got {steps}")
    return list(_schedule(steps, tokens))


@functools.lru_cache(maxsize=None)
def _schedule(steps: int, tokens: int) -> tuple[int, ...]:
    left, out = tokens, []
    for s in range(steps):
        left = min(math.floor(tokens * math.cos(math.pi / 2 * (s + 1) / steps)), left - 1)
        out.append(max(left, 0))
    return tuple(out)


def uniform(batch: int, shape: tuple[int, ...], device: torch.device, generator: Generators = None) -> torch.Tensor:
    """U[0, 1) of shape (batch, *shape); with a list of generators row b draws from generator b, so a row gets the
    same numbers whether it is sampled alone or in a batch."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != batch:
            raise ValueError(f"{plural(len(generator), 'generator')} for a batch of {batch}: give one per row")
        return torch.stack([torch.rand(shape, device=device, generator=g) for g in generator])
    return torch.rand(batch, *shape, device=device, generator=generator)


def sample_categorical(probs: torch.Tensor, generator: Generators = None) -> torch.Tensor:
    """One draw per row of probs (B, ..., V) by inverse CDF: one uniform per row (multinomial draws V exponentials)."""
    cdf = probs.float().cumsum(-1)
    total = cdf[..., -1:]
    u = uniform(probs.shape[0], (*probs.shape[1:-1], 1), probs.device, generator) * total
    u = torch.minimum(u, torch.nextafter(total, torch.zeros_like(total)))  # in [0, total), even when u*total rounds up
    # the first token whose cdf exceeds u has mass (side="left" would give a leading p = 0 token at u = 0)
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=probs.shape[-1] - 1)


def _scratch(buffers: dict | None, name: str, shape: tuple[int, ...], dtype: torch.dtype,
             device: torch.device) -> torch.Tensor:
    """A tensor reused from frame to frame when the caller keeps `buffers`, else a new one."""
    t = None if buffers is None else buffers.get(name)
    if t is None or t.shape != shape or t.dtype != dtype or t.device != device:
        t = torch.empty(shape, dtype=dtype, device=device)
        if buffers is not None:
            buffers[name] = t
    return t


@torch.no_grad()
def sample_frame(dyn: Dynamics, cache: KVCache, action: torch.Tensor, steps: int = 8, temperature: float = 1.0,
                 cfg: float = 1.0, unmask: str = "random", cond: torch.Tensor | None = None,
                 generator: Generators = None, commit: bool = True, cond_cfg: float = 1.0,
                 buffers: dict | None = None, step_ms: list[float] | None = None, top_p: float = 1.0) -> torch.Tensor:
    """action (B,) latent ids -> new frame tokens (B, N); with commit the frame joins the cache.

    `cfg` guides on the action (against the null action), `cond_cfg` on the conditioning (against a zero slot,
    i.e. "no event"); the guided passes run side by side in one batch. `generator` may be a list, one per row.
    With `buffers` (a dict the caller keeps) the token maps are reused every frame, so the returned tokens are only
    valid until the next call with the same dict. With `step_ms` the ms of each MaskGIT step, then of the commit
    pass, are appended (on CUDA each is synchronised, so only ask for them when measuring). `top_p` < 1 draws only
    from the likeliest tokens that together hold that much probability (nucleus sampling: no long-tail speckle).
    """
    B, N, dev = action.shape[0], dyn.tokens, action.device
    tokens = _scratch(buffers, "tokens", (B, N), torch.long, dev).fill_(dyn.mask_id)
    acts = action[:, None]  # (B, 1)
    guided = cfg != 1.0
    cond_guided = cond is not None and cond_cfg != 1.0
    branches = 1 + guided + cond_guided
    if branches > 1:  # cond, [null action], [zero conditioning] side by side in one batch
        step_cache = cache.repeat(branches)
        acts = torch.cat([acts] + [torch.full_like(acts, dyn.null_action)] * guided + [acts] * cond_guided)
        step_cond = None if cond is None else torch.cat([cond] * (1 + guided) + [torch.zeros_like(cond)] * cond_guided)
    else:
        step_cache, step_cond = cache, cond
    inp = _scratch(buffers, "inp", (branches * B, N), torch.long, dev) if branches > 1 else tokens
    still_masked, t0 = N, time.perf_counter()
    for left in mask_schedule(steps, N):
        reveal, still_masked = still_masked - left, left  # every row reveals the same count: no GPU sync needed
        masked = tokens == dyn.mask_id  # (B, N)
        if branches > 1:
            inp.view(branches, B, N).copy_(tokens.expand(branches, B, N))
        logits = dyn(inp[:, None], acts, step_cond, step_cache, append=False)[:, 0]  # (B', N, V)
        if branches > 1:
            parts = logits.float().chunk(branches)
            c = parts[0]
            logits = parts[1] + cfg * (c - parts[1]) if guided else c
            if cond_guided:
                logits = logits + (cond_cfg - 1) * (c - parts[-1])
        if unmask == "confidence":  # draw everywhere, reveal the most confident masked positions
            probs = _probs(logits, temperature, top_p)  # (B, N, V)
            sampled = sample_categorical(probs, generator) if temperature > 0 else probs.argmax(-1)
            score = probs.gather(-1, sampled[..., None])[..., 0].masked_fill(~masked, -1.0)
            idx = score.topk(reveal, dim=-1).indices  # (B, reveal)
            tokens.scatter_(1, idx, sampled.gather(1, idx))
        else:  # random order does not depend on the draws: pick positions first, then draw only there
            score = uniform(B, (N,), dev, generator).masked_fill_(~masked, -1.0)
            idx = score.topk(reveal, dim=-1).indices  # (B, reveal)
            probs = _probs(logits.gather(1, idx[..., None].expand(-1, -1, logits.shape[-1])), temperature, top_p)
            tokens.scatter_(1, idx, sample_categorical(probs, generator) if temperature > 0 else probs.argmax(-1))
        t0 = _lap(step_ms, t0, dev)
    if commit:
        dyn(tokens[:, None], action[:, None], cond, cache, kv_only=True)
        _lap(step_ms, t0, dev)
    return tokens


def _probs(logits: torch.Tensor, temperature: float, top_p: float = 1.0) -> torch.Tensor:
    x = logits.float()
    p = torch.softmax(x / temperature if temperature > 0 and temperature != 1 else x, dim=-1)
    if top_p >= 1.0 or temperature <= 0:
        return p
    sp, order = p.sort(-1, descending=True)
    sp = sp.masked_fill_(sp.cumsum(-1) - sp >= top_p, 0.0)  # keep the head that first reaches top_p (never empty)
    return torch.zeros_like(p).scatter_(-1, order, sp / sp.sum(-1, keepdim=True))


def _lap(step_ms: list[float] | None, t0: float, device: torch.device) -> float:
    """Append the ms since t0 (synchronising CUDA first) when timings are asked for; returns the new start."""
    if step_ms is None:
        return t0
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t1 = time.perf_counter()
    step_ms.append((t1 - t0) * 1e3)
    return t1
