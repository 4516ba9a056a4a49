"""The whole world model: tokenizer + latent action model + dynamics, and a bank of real first frames."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from bridge.model.checkpoint import load_into, load_model
from bridge.model.config import WorldConfig
from bridge.model.dynamics import Dynamics
from bridge.model.latent_actions import LatentActionModel
from bridge.model.tokenizer import VideoTokenizer


class WorldModel(nn.Module):
    """Composes the three parts; `bank` (K, N) holds token maps of real first frames to start worlds from."""

    def __init__(self, cfg: WorldConfig, bank_size: int = 0):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.tokenizer = VideoTokenizer(cfg.tokenizer, cfg.height, cfg.width)
        self.lam = LatentActionModel(cfg.lam, cfg.height, cfg.width)
        self.dynamics = Dynamics(cfg.dynamics, self.tokenizer.vocab, self.lam.num_actions, cfg.tokens_per_frame)
        self.register_buffer("bank", torch.zeros(bank_size, cfg.tokens_per_frame, dtype=torch.long))
        if cfg.event_types:
            if cfg.dynamics.cond_dim <= 0:
                raise ValueError("event_types need a conditioning slot: set dynamics.cond_dim > 0")
            # set from the text encoder (`train prompts events`), never by a gradient: a buffer, so DDP and the
            # optimizers leave it alone (a parameter no loss reads fails DDP's second step)
            self.register_buffer("event_embed", torch.zeros(len(cfg.event_types), cfg.dynamics.cond_dim))

    def train(self, mode: bool = True) -> "WorldModel":
        super().train(mode)
        self.tokenizer.eval()  # the tokenizer is trained first, then frozen
        return self

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Co-training loss on clips (B, T, H, W, 3): LAM on pixels, dynamics on frozen tokens + the LAM's codes."""
        with torch.no_grad():
            tokens = self.tokenizer.encode(frames)[0]  # (B, T, N)
        lam = self.lam(frames)
        dyn = self.dynamics.training_loss(tokens, lam["actions"].detach())
        counts = torch.bincount(lam["actions"].flatten(), minlength=self.lam.num_actions).float()
        p = counts / counts.sum()
        bits = -(p * torch.log2(p.clamp(min=1e-12))).sum()
        return {"loss": lam["loss"] + dyn["loss"], "ce": dyn["ce"], "acc": dyn["acc"], "lam_rel_mse": lam["rel_mse"],
                "lam_bits": bits}

    @classmethod
    def load(cls, path: Path) -> tuple["WorldModel", dict, dict]:
        """A world checkpoint directory -> (model in eval mode, model card, config header)."""
        cfg, tensors, card, header = load_model(Path(path), kind="world")
        model = cls(cfg, bank_size=tensors["bank"].shape[0] if "bank" in tensors else 0)
        load_into(model, tensors, where=str(Path(path) / "model.safetensors"))
        return model.eval(), card, header
