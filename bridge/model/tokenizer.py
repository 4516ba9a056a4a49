"""Video tokenizer: an ST-ViViT VQ-VAE, causal in time, so frames can be tokenized and decoded one at a time."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from bridge.model.config import TokenizerConfig
from bridge.model.quantizer import make_quantizer
from bridge.model.st_transformer import KVCache, STTransformer, patchify, unpatchify


def to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float in [0, 1]."""
    return frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()


def psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) of an MSE of pixels in [0, 1] (peak 1); every PSNR training and eval report is this one formula."""
    return -10 * torch.log10(mse.clamp(min=1e-10))


DECODER_PARTS = ("from_code", "decoder", "patch_out")  # after the codebook: they draw the tokens, they do not define them


class VideoTokenizer(nn.Module):
    """Pixels (B, T, H, W, 3) -> tokens (B, T, N) -> pixels."""

    def __init__(self, cfg: TokenizerConfig, height: int, width: int):
        super().__init__()
        self.cfg, self.height, self.width = cfg, height, width
        p = cfg.patch
        n = (height // p) * (width // p)
        self.quant = make_quantizer(cfg.quantizer, cfg.codebook, cfg.code_dim, cfg.fsq_levels, cfg.commit, cfg.reset_after,
                                    cfg.entropy_temp, fsq_grid=cfg.fsq_grid)
        self.patch_in = nn.Linear(p * p * 3, cfg.dim)
        self.encoder = STTransformer(cfg.dim, cfg.enc_depth, cfg.heads, n, cfg.window, cfg.dropout)
        self.to_code = nn.Linear(cfg.dim, self.quant.dim)
        self.from_code = nn.Linear(self.quant.dim, cfg.dim)
        self.decoder = STTransformer(cfg.dim, cfg.dec_depth, cfg.heads, n, cfg.window, cfg.dropout)
        self.patch_out = nn.Linear(cfg.dim, p * p * 3)

    @property
    def vocab(self) -> int:
        return self.quant.num_codes

    def encode(self, frames: torch.Tensor, cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """frames (B, T, H, W, 3) uint8 or [0,1] -> tokens (B, T, N), quantized codes (B, T, N, d), stats."""
        x = self.patch_in(patchify(to_float(frames), self.cfg.patch))  # (B, T, N, E)
        z = self.to_code(self.encoder(x, cache))  # (B, T, N, d)
        q, idx, stats = self.quant(z)
        return idx, q, stats

    def decode_codes(self, q: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """codes (B, T, N, d) -> pixels (B, T, H, W, 3), unclamped."""
        y = self.patch_out(self.decoder(self.from_code(q), cache))  # (B, T, N, p*p*3)
        return unpatchify(y, self.cfg.patch, self.height, self.width)

    def decode(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """tokens (B, T, N) -> pixels (B, T, H, W, 3) in [0, 1]."""
        return self.decode_codes(self.quant.lookup(tokens), cache).clamp(0, 1)

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Reconstruction loss + quantizer loss for training."""
        target = to_float(frames)
        idx, q, stats = self.encode(frames)
        recon = self.decode_codes(q)
        mse = F.mse_loss(recon.float(), target)
        psnr = psnr_from_mse(mse.detach())
        loss = mse + stats["loss"] - self.cfg.entropy_weight * stats["entropy_bonus"]
        return {"loss": loss, "mse": mse, "psnr": psnr, "vq": stats["loss"]}
