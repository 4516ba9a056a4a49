"""A patch discriminator for `worldbridge train decoder --adv`: with MSE alone a decoder draws the blurred mean of
what a token could hold, so one-pixel snowflakes and thin raindrops average away; a critic of small patches asks for
sharp ones (VQGAN's recipe: hinge loss, its weight set by the ratio of the two losses' gradients).

The critic is conditional (pix2pix): it sees each frame beside the codes the frame was drawn from. An unconditional one
accepts a snowless drawing of a snowy frame, because clear frames are real too; given the codes, it can tell that
these codes came with snow."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """Frames (B, H, W, 3) in [0, 1] and their codes (B, N, code_dim), one per `patch` x `patch` block -> real/drawn
    logits (B, H/4, W/4), one per 28 px patch (stride 4); full resolution first, so a single-pixel flake is seen."""

    def __init__(self, code_dim: int = 0, patch: int = 8, ch: int = 32):
        super().__init__()
        self.code_dim, self.patch = code_dim, patch

        def conv(i: int, o: int, k: int, s: int) -> nn.Module:
            return spectral_norm(nn.Conv2d(i, o, k, s, k // 2 - (s == 2 and k % 2 == 0)))

        self.net = nn.Sequential(
            conv(3 + code_dim, ch, 3, 1), nn.LeakyReLU(0.2),
            conv(ch, ch * 2, 4, 2), nn.LeakyReLU(0.2),
            conv(ch * 2, ch * 4, 4, 2), nn.LeakyReLU(0.2),
            conv(ch * 4, ch * 4, 3, 1), nn.LeakyReLU(0.2),
            conv(ch * 4, 1, 3, 1),
        )

    def forward(self, frames: torch.Tensor, codes: torch.Tensor | None = None) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2) * 2 - 1
        if self.code_dim:
            B, _, H, W = x.shape
            c = codes.transpose(1, 2).reshape(B, self.code_dim, H // self.patch, W // self.patch)
            x = torch.cat([x, c.repeat_interleave(self.patch, 2).repeat_interleave(self.patch, 3)], 1)
        return self.net(x).squeeze(1)


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss: real patches above +1, drawn ones below -1."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The decoder's adversarial loss: raise the critic's score of what it draws."""
    return -fake_logits.mean()


def adaptive_weight(rec_loss: torch.Tensor, adv_loss: torch.Tensor, last: torch.Tensor, scale: float) -> torch.Tensor:
    """scale * |grad rec| / |grad adv| at the decoder's last layer, so --adv means the same at any loss magnitude."""
    g_rec = torch.autograd.grad(rec_loss, last, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adv_loss, last, retain_graph=True)[0]
    return (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0, 1e4).detach() * scale
