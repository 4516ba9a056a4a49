"""MaskGIT dynamics: predicts the masked tokens of frame t+1 from tokens of frames <= t and the action at t.

Bidirectional within a frame, causal over frames (ST transformer). Actions enter as additive embeddings
(Genie) or as one action token per frame (`action_mode="token"`). A learned null action (used for action
dropout in training) makes classifier-free guidance on actions possible. `cond` is a reserved slot for
prompt/event embeddings: zero-initialised, so it does nothing until a later stage trains it.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from bridge.model.config import DynamicsConfig
from bridge.model.st_transformer import KVCache, STTransformer


def frame_actions(actions: torch.Tensor, null: int) -> torch.Tensor:
    """Step actions (B, T-1) -> per-frame conditioning (B, T): frame t+1 gets action t, frame 0 the null action."""
    pad = torch.full_like(actions[:, :1], null)
    return torch.cat([pad, actions], dim=1)


class Dynamics(nn.Module):
    """tokens (B, T, N) with mask ids + per-frame actions (B, T) -> logits (B, T, N, vocab)."""

    def __init__(self, cfg: DynamicsConfig, vocab: int, num_actions: int, tokens: int):
        super().__init__()
        self.cfg, self.vocab, self.num_actions = cfg, vocab, num_actions
        self.mask_id, self.null_action, self.tokens = vocab, num_actions, tokens
        self.n_prefix = int(cfg.action_mode == "token") + int(cfg.cond_prefix and cfg.cond_dim > 0)
        self.tok_embed = nn.Embedding(vocab + 1, cfg.dim)  # last row = MASK
        self.act_embed = nn.Embedding(num_actions + 1, cfg.dim)  # last row = null action
        if cfg.cond_dim > 0:
            self.cond_proj = nn.Linear(cfg.cond_dim, cfg.dim, bias=False)
            nn.init.zeros_(self.cond_proj.weight)  # zero conditioning = no effect until trained
            if cfg.cond_prefix:
                self.cond_token = nn.Parameter(torch.randn(1, 1, 1, cfg.dim) * 0.02)
        self.st = STTransformer(cfg.dim, cfg.depth, cfg.heads, tokens + self.n_prefix, cfg.window, cfg.dropout)
        self.head = nn.Linear(cfg.dim, vocab)
        nn.init.normal_(self.tok_embed.weight, std=0.02)
        nn.init.normal_(self.act_embed.weight, std=0.02)

    def new_cache(self) -> KVCache:
        return self.st.new_cache()

    def forward(self, tokens: torch.Tensor, actions: torch.Tensor, cond: torch.Tensor | None = None,
                cache: KVCache | None = None, append: bool = True, kv_only: bool = False) -> torch.Tensor | None:
        """Logits for every token; kv_only: the frames only join the cache (a commit), no logits."""
        x = self.tok_embed(tokens)  # (B, T, N, D)
        a = self.act_embed(actions)[:, :, None]  # (B, T, 1, D)
        c = self.cond_proj(cond)[:, :, None] if cond is not None and self.cfg.cond_dim > 0 else None  # (B, T, 1, D)
        prefix = []
        if self.cfg.action_mode == "token":
            prefix.append(a)
        else:
            x = x + a
        if c is not None:
            x = x + c
        if self.cfg.cond_prefix and self.cfg.cond_dim > 0:
            prefix.append(self.cond_token.expand(x.shape[0], x.shape[1], 1, -1) + (c if c is not None else 0))
        if prefix:
            x = torch.cat(prefix + [x], dim=2)  # (B, T, P+N, D)
        h = self.st(x, cache, append, kv_only)
        return None if h is None else self.head(h[:, :, self.n_prefix:])  # (B, T, N, V)

    def training_loss(self, tokens: torch.Tensor, actions: torch.Tensor, cond: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """tokens (B, T, N) clean, actions (B, T-1) latent action ids -> masked-token cross-entropy."""
        B, T, N = tokens.shape
        if T < 2:
            raise ValueError(f"dynamics training needs clips of at least 2 frames, got {T}")
        dev, cfg = tokens.device, self.cfg
        rand = lambda *s: torch.rand(*s, device=dev, generator=generator)  # noqa: E731
        # --- Mask: per-sample rate ~ U(mask_min, 1); the first frame is never masked ---
        rate = cfg.mask_min + (1 - cfg.mask_min) * rand(B, 1, 1)
        mask = rand(B, T, N) < rate
        mask[:, 0] = False
        # --- Corrupt context: random token replacement, heavier on later frames (against rollout drift) ---
        p = cfg.corrupt_max * torch.arange(T, device=dev) / max(T - 1, 1)  # (T,)
        corrupt = (rand(B, T, N) < p[None, :, None]) & ~mask
        noise = torch.randint(0, self.vocab, (B, T, N), device=dev, generator=generator)
        inp = torch.where(mask, torch.full_like(tokens, self.mask_id), torch.where(corrupt, noise, tokens))
        # --- Action dropout to the learned null action (enables guidance) ---
        acts = frame_actions(actions, self.null_action)
        acts = torch.where(rand(B, T) < cfg.action_dropout, torch.full_like(acts, self.null_action), acts)
        if cond is None and cfg.cond_dim > 0:
            cond = torch.zeros(B, T, cfg.cond_dim, device=dev)  # keep the slot in the graph (DDP) at no effect
        logits = self(inp, acts, cond)
        m = mask.flatten().float()
        ce_all = F.cross_entropy(logits.flatten(0, 2).float(), tokens.flatten(), reduction="none")
        ce = (ce_all * m).sum() / m.sum().clamp(min=1)
        acc = ((logits.flatten(0, 2).argmax(-1) == tokens.flatten()).float() * m).sum() / m.sum().clamp(min=1)
        # the corrupted inputs and mask go back too, so a caller can score another model on the very same positions
        return {"loss": ce, "ce": ce, "acc": acc, "logits": logits, "inputs": inp, "frame_actions": acts, "mask": mask}
