"""MaskGIT decoding of ONE new frame on top of the dynamics' KV cache of past frames."""

from __future__ import annotations

import math

import torch

from bridge.model.dynamics import Dynamics
from bridge.model.st_transformer import KVCache


def mask_schedule(steps: int, tokens: int) -> list[int]:
    """Tokens still masked after each step: cosine gamma(r) = cos(pi/2 r), at least one revealed per step, 0 at the end."""
    if not 1 <= steps <= tokens:
        raise ValueError(f"MaskGIT steps must be between 1 and the tokens per frame ({tokens}), got {steps}")
    left, out = tokens, []
    for s in range(steps):
        left = min(math.floor(tokens * math.cos(math.pi / 2 * (s + 1) / steps)), left - 1)
        out.append(max(left, 0))
    return out


def sample_categorical(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw per row of probs (..., V) by inverse CDF: one uniform per row (multinomial draws V exponentials)."""
    cdf = probs.float().cumsum(-1)
    u = torch.rand(*probs.shape[:-1], 1, device=probs.device, generator=generator) * cdf[..., -1:]
    return torch.searchsorted(cdf, u).squeeze(-1).clamp_(max=probs.shape[-1] - 1)


@torch.no_grad()
def sample_frame(dyn: Dynamics, cache: KVCache, action: torch.Tensor, steps: int = 8, temperature: float = 1.0,
                 cfg: float = 1.0, unmask: str = "random", cond: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, commit: bool = True) -> torch.Tensor:
    """action (B,) latent ids -> new frame tokens (B, N); with commit the frame joins the cache."""
    B, N, dev = action.shape[0], dyn.tokens, action.device
    tokens = torch.full((B, N), dyn.mask_id, dtype=torch.long, device=dev)
    acts = action[:, None]  # (B, 1)
    guided = cfg != 1.0
    if guided:  # cond and uncond (null action) side by side in one batch
        step_cache = cache.repeat(2)
        acts = torch.cat([acts, torch.full_like(acts, dyn.null_action)])
        step_cond = None if cond is None else torch.cat([cond, cond])
    else:
        step_cache, step_cond = cache, cond
    for s, left in enumerate(mask_schedule(steps, N)):
        masked = tokens == dyn.mask_id  # (B, N)
        inp = torch.cat([tokens, tokens]) if guided else tokens
        logits = dyn(inp[:, None], acts, step_cond, step_cache, append=False)[:, 0].float()  # (B', N, V)
        if guided:
            c, u = logits.chunk(2)
            logits = u + cfg * (c - u)
        probs = torch.softmax(logits / temperature if temperature > 0 else logits, dim=-1)  # (B, N, V)
        if temperature > 0:
            sampled = sample_categorical(probs, generator)
        else:
            sampled = probs.argmax(-1)
        conf = probs.gather(-1, sampled[..., None])[..., 0]
        if unmask == "confidence":
            score = conf
        else:
            score = torch.rand(B, N, device=dev, generator=generator)
        score = score.masked_fill(~masked, -1.0)
        reveal = int(masked[0].sum().item()) - left
        idx = score.topk(reveal, dim=-1).indices  # (B, reveal)
        tokens.scatter_(1, idx, sampled.gather(1, idx))
    if commit:
        dyn(tokens[:, None], action[:, None], cond, cache, append=True)
    return tokens
