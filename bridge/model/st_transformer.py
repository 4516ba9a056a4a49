"""Spatio-temporal transformer (Genie's ST block) with a temporal KV cache, shared by all three models.

Each block: spatial attention within a frame -> causal temporal attention across frames at the same
position -> one FFN. Temporal attention uses rotary position embeddings over absolute frame indices and a
sliding window of `window` frames, so a cached rollout (one new frame at a time) computes exactly what a
full pass over the same frames computes, at the cost of one frame.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class KVCache:
    """Temporal keys/values of committed frames: a ring of the last window - 1 frames plus one scratch slot.

    Buffers are (B*N, H, window, hd) per layer, preallocated so adding the frame being generated is a slot
    write, not a concatenation. Slot order does not matter: keys carry their frame position (rotary).
    """

    def __init__(self, depth: int, window: int):
        self.window, self.ring = window, max(window - 1, 0)
        self.k: list[torch.Tensor | None] = [None] * depth
        self.v: list[torch.Tensor | None] = [None] * depth
        self.slot_pos: torch.Tensor | None = None  # (ring,) absolute frame index held in each slot, -1 = empty
        self.pos = 0  # absolute index of the next frame
        self.filled = 0  # ring slots in use (a Python int, so the hot path never syncs with the GPU)

    def buffers(self, layer: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.k[layer] is None:
            shape = (*like.shape[:2], self.ring + 1, like.shape[-1])
            self.k[layer], self.v[layer] = like.new_zeros(shape), like.new_zeros(shape)
            if self.slot_pos is None:
                self.slot_pos = torch.full((self.ring,), -1, dtype=torch.long, device=like.device)
        return self.k[layer], self.v[layer]

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor, q_pos: torch.Tensor) -> None:
        """Store the last `ring` of the new frames (positions q_pos) in their ring slots."""
        if self.ring == 0:
            return
        K, V = self.buffers(layer, k)
        keep = slice(max(k.shape[-2] - self.ring, 0), None)
        slots = q_pos[keep] % self.ring
        K[:, :, slots], V[:, :, slots] = k[:, :, keep], v[:, :, keep]

    def advance(self, q_pos: torch.Tensor) -> None:
        if self.ring and self.slot_pos is not None:
            keep = q_pos[max(len(q_pos) - self.ring, 0):]
            self.slot_pos[keep % self.ring] = keep
        self.pos += len(q_pos)
        self.filled = min(self.filled + len(q_pos), self.ring)

    def rewind(self) -> None:
        """Forget the last committed frame so a changed version of it can be committed in its place (frame edits).

        Its ring slot is marked empty, so the re-committed frame sees one frame less of the past than the original.
        """
        if self.pos == 0:
            raise RuntimeError("nothing to rewind: no frame was committed to this cache")
        self.pos -= 1
        if self.ring and self.slot_pos is not None:
            self.slot_pos[self.pos % self.ring] = -1
            self.filled = max(self.filled - 1, 0)

    def _map(self, fn) -> "KVCache":
        c = KVCache(len(self.k), self.window)
        c.k = [None if t is None else fn(t) for t in self.k]
        c.v = [None if t is None else fn(t) for t in self.v]
        c.slot_pos = None if self.slot_pos is None else self.slot_pos.clone()
        c.pos, c.filled = self.pos, self.filled
        return c

    def clone(self) -> "KVCache":
        return self._map(lambda t: t.clone())

    def repeat(self, n: int) -> "KVCache":
        """The same past for a batch n times larger (guidance runs cond and uncond side by side)."""
        return self._map(lambda t: t.repeat(n, 1, 1, 1))


def rope(x: torch.Tensor, pos0: int, theta: float = 10000.0) -> torch.Tensor:
    """Rotate pairs of channels of x (..., T, hd), frames pos0.., by angle pos * freq, so attention scores depend on
    frame distance only."""
    hd = x.shape[-1]
    cos, sin = _rope_tables(pos0, x.shape[-2], hd, theta, x.dtype, x.device)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


@functools.lru_cache(maxsize=16)
def _rope_tables(pos0: int, n: int, hd: int, theta: float, dtype: torch.dtype,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin for frames pos0 .. pos0+n-1, kept: a rollout's passes and layers all ask for the same frame.
    Made outside inference mode, so tables first asked for under it still serve a training pass."""
    with torch.inference_mode(False):
        freqs = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64, device=device) / hd)  # (hd/2,)
        ang = torch.arange(pos0, pos0 + n, dtype=torch.float64, device=device)[:, None] * freqs[None]  # float64: exact
        return ang.cos().to(dtype), ang.sin().to(dtype)


PLAIN_ATTENTION_MIN_KEYS = 8  # from this many cached frames on, a CPU attends one query frame with plain ops


def attend_one(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """One query frame over the cached ones. SDPA's CPU kernel pays per (row, head) pair: over the dynamics' 16 keys it
    took twice as long as these plain fp32 ops, over the decoder's 4 it is the faster (docs/model.md, fast path)."""
    if q.device.type != "cpu" or k.shape[-2] < PLAIN_ATTENTION_MIN_KEYS:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    with torch.autocast("cpu", enabled=False):  # bf16 autocast would send these small matmuls back to bf16
        s = (q.float() @ k.float().transpose(-1, -2)) * q.shape[-1] ** -0.5
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        return (s.softmax(-1) @ v.float()).to(q.dtype)


def band_mask(q_pos: torch.Tensor, k_pos: torch.Tensor, window: int) -> torch.Tensor:
    """True where a query frame may attend a key frame: not in the future and fewer than `window` frames back."""
    d = q_pos[:, None] - k_pos[None, :]  # (Tq, Tk)
    return (d >= 0) & (d < window)


class STBlock(nn.Module):
    """Spatial attention -> causal temporal attention -> FFN, pre-norm residuals."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.ln_s, self.ln_t, self.ln_f = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.s_qkv, self.s_proj = nn.Linear(dim, 3 * dim, bias=False), nn.Linear(dim, dim)
        self.t_qkv, self.t_proj = nn.Linear(dim, 3 * dim, bias=False), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, pos0: int, window: int, cache: KVCache | None = None, layer: int = 0,
                append: bool = False, kv_only: bool = False) -> torch.Tensor:
        B, T, N, D = x.shape
        H, hd = self.heads, D // self.heads
        p = self.dropout if self.training else 0.0

        # --- Spatial attention within each frame ---
        q, k, v = self.s_qkv(self.ln_s(x)).view(B * T, N, 3, H, hd).permute(2, 0, 3, 1, 4)  # each (B*T, H, N, hd)
        o = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        x = x + F.dropout(self.s_proj(o.transpose(1, 2).reshape(B, T, N, D)), p, self.training)

        # --- Causal temporal attention at each position ---
        h = self.ln_t(x).transpose(1, 2)  # (B, N, T, D)
        qkv = self.t_qkv(h).view(B * N, T, 3, H, hd).permute(2, 0, 3, 1, 4)  # (3, B*N, H, T, hd)
        q_pos = torch.arange(pos0, pos0 + T, device=x.device)
        if kv_only:  # the last layer of a commit: only its keys and values are ever read, so q is not even rotated
            cache.write(layer, rope(qkv[1], pos0), qkv[2], q_pos)
            return x
        (q, k), v = rope(qkv[:2], pos0), qkv[2]
        if cache is None:  # training / full pass: banded causal mask over the clip
            mask = band_mask(q_pos, q_pos, window) if T > 1 else None
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        elif T == 1:  # rollout hot path: the new frame goes into the scratch slot, attends ring + itself
            K, V = cache.buffers(layer, k)
            K[:, :, -1:], V[:, :, -1:] = k, v
            mask = None
            if cache.filled < cache.ring:
                mask = torch.cat([cache.slot_pos >= 0, cache.slot_pos.new_ones(1, dtype=torch.bool)])[None]
            o = attend_one(q, K, V, mask)
        else:  # several new frames on top of a cache
            K, V = cache.buffers(layer, k)
            k_pos = torch.cat([cache.slot_pos, q_pos])
            mask = band_mask(q_pos, k_pos, window) & (k_pos >= 0)[None]
            o = F.scaled_dot_product_attention(q, torch.cat([K[:, :, :-1], k], 2), torch.cat([V[:, :, :-1], v], 2),
                                               attn_mask=mask)
        if cache is not None and append:
            cache.write(layer, k, v, q_pos)
        x = x + F.dropout(self.t_proj(o.reshape(B, N, H, T, hd).permute(0, 3, 1, 2, 4).reshape(B, T, N, D)), p, self.training)

        # --- Feed-forward ---
        x = x + F.dropout(self.ffn(self.ln_f(x)), p, self.training)
        return x


class STTransformer(nn.Module):
    """A stack of ST blocks over (B, T, N, D) with a learned spatial position embedding and a final norm."""

    def __init__(self, dim: int, depth: int, heads: int, tokens: int, window: int, dropout: float = 0.0):
        super().__init__()
        self.window, self.depth = window, depth
        self.pos = nn.Parameter(torch.zeros(1, 1, tokens, dim))
        self.blocks = nn.ModuleList([STBlock(dim, heads, dropout) for _ in range(depth)])
        self.ln = nn.LayerNorm(dim)
        self.apply(_init)
        nn.init.normal_(self.pos, std=0.02)
        for b in self.blocks:  # scale residual projections (GPT-2) so deep stacks start near identity
            for lin in (b.s_proj, b.t_proj, b.ffn[2]):
                nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * depth))

    def new_cache(self) -> KVCache:
        return KVCache(self.depth, self.window)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, append: bool = True,
                kv_only: bool = False) -> torch.Tensor | None:
        """x (B, T, N, D) are the frames after those in `cache`; with append they join the cache. kv_only: they only
        join it (a rollout's commit), so the last layer stops at its keys and values and nothing is returned."""
        if kv_only and (cache is None or not append):
            raise ValueError("kv_only adds frames to a cache: give a cache and append=True")
        x = x + self.pos
        pos0 = cache.pos if cache is not None else 0
        for i, blk in enumerate(self.blocks):
            x = blk(x, pos0, self.window, cache, i, append, kv_only and i == self.depth - 1)
        if cache is not None and append:
            cache.advance(torch.arange(pos0, pos0 + x.shape[1], device=x.device))
        return None if kv_only else self.ln(x)


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.normal_(m.weight, std=0.02)


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, T, H, W, C) -> (B, T, N, p*p*C), row-major patches."""
    B, T, H, W, C = x.shape
    x = x.view(B, T, H // p, p, W // p, p, C).permute(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(B, T, (H // p) * (W // p), p * p * C)


def unpatchify(x: torch.Tensor, p: int, H: int, W: int) -> torch.Tensor:
    """(B, T, N, p*p*C) -> (B, T, H, W, C)."""
    B, T, N, E = x.shape
    C = E // (p * p)
    x = x.view(B, T, H // p, W // p, p, p, C).permute(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(B, T, H, W, C)
