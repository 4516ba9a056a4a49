"""Diagnostic: how much does knowing the TRUE action help the latent action decoder on a dataset?

Trains the LAM decoder with the true effective action as its code ("oracle") or a constant code ("const") and prints
the relative residual error; a small gap means the footage's change is mostly not the player's doing, so an
unsupervised LAM has little reason to learn the actions (docs/model.md, "Why the sandbox latent actions sit at chance").
Usage: python -m bridge.train.lam_oracle --data DIR --mode oracle|const [--steps 400]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn

from bridge.data.dataset import VideoDataset
from bridge.model.latent_actions import LatentActionModel
from bridge.model.presets import get_preset


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--mode", choices=("oracle", "const"), default="oracle")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--patch", type=int, default=8)
    p.add_argument("--shifts", type=int, nargs=2, default=(2, 4), help="lam.motion_shifts (max |dx|, max |dy|)")
    p.add_argument("--context", type=int, default=1, help="lam.decoder_context")
    p.add_argument("--clip", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--every", type=int, default=50, help="print every N steps")
    a = p.parse_args(argv)
    torch.manual_seed(0)
    ds = VideoDataset(a.data)
    eps, rng = list(ds.split("train")), np.random.default_rng(0)
    if ds.actions(eps[0], effective=True) is None:
        raise SystemExit(f"{a.data} has no effective actions: use sandbox footage (`worldbridge data generate`)")
    cfg = get_preset("tiny").lam
    cfg.patch, cfg.motion_shifts, cfg.decoder_context = a.patch, tuple(a.shifts), a.context
    lam = LatentActionModel(cfg, ds.height, ds.width)
    emb = nn.Embedding(len(ds.action_names), lam.quant.dim)
    zero = torch.zeros(())
    true: dict[str, torch.Tensor] = {}

    def encode(frames: torch.Tensor):  # replaces the LAM encoder: the code is the true action (or always 0)
        idx = true["a"] if a.mode == "oracle" else torch.zeros_like(true["a"])
        return idx, emb(idx), {"loss": zero, "entropy": zero, "entropy_bonus": zero}

    lam.encode = encode
    opt = torch.optim.AdamW([*lam.parameters(), *emb.parameters()], lr=1e-3)
    hist, t0 = [], time.time()
    for step in range(1, a.steps + 1):
        clips, acts = [], []
        for _ in range(a.batch):
            ep = eps[rng.integers(len(eps))]
            s = int(rng.integers(0, ep.length - a.clip))
            clips.append(np.asarray(ds.frames(ep)[s:s + a.clip]))
            acts.append(np.asarray(ds.actions(ep, effective=True)[s:s + a.clip - 1]))
        true["a"] = torch.from_numpy(np.stack(acts).astype(np.int64)).clamp(min=0)
        r = lam(torch.from_numpy(np.stack(clips)))
        opt.zero_grad()
        r["loss"].backward()
        opt.step()
        hist.append(float(r["rel_mse"].detach()))
        if step % a.every == 0:
            print(json.dumps({"mode": a.mode, "step": step, "seconds": round(time.time() - t0),
                              "rel_mse_recent": round(float(np.mean(hist[-a.every:])), 4)}), flush=True)


if __name__ == "__main__":
    main()
