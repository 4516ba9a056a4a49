"""Diagnostic: how much does knowing the TRUE action help the latent action decoder, and can the encoder see it?

`oracle`/`const` train the LAM decoder with the true effective action as its code, or a constant code, and print the
relative residual error; a small gap means the footage's change is mostly not the player's doing, so an unsupervised
LAM has little reason to learn the actions. `probe` trains the LAM encoder with a linear head on the true action
(cross-entropy) and prints its accuracy: if even that stays at the majority class, the encoder cannot see the action
(docs/model.md, "Why the sandbox latent actions sit at chance"). `lam` trains the whole LAM unsupervised (bf16 autocast)
and prints how well its codes match the true actions on held-out clips (many-to-one, as `worldbridge eval` scores).
Usage: python -m bridge.train.lam_oracle --data DIR --mode oracle|const|probe|lam [--steps 400] [--weather clear]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn

from bridge.data.dataset import ClipSampler, VideoDataset
from bridge.model.latent_actions import LatentActionModel
from bridge.model.presets import get_preset
from bridge.model.quantizer import reset_dead_codes
from bridge.train.evaluate import action_agreement, clips_with_actions, code_stats


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--mode", choices=("oracle", "const", "probe", "lam"), default="oracle")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--patch", type=int, default=8)
    p.add_argument("--shifts", type=int, nargs=2, default=(2, 4), help="lam.motion_shifts (max |dx|, max |dy|)")
    p.add_argument("--context", type=int, default=1, help="lam.decoder_context")
    p.add_argument("--clip", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--weather", default=None, help="only event-free episodes with this weather (e.g. clear)")
    p.add_argument("--motion-features", type=int, default=0, help="lam.motion_features (encoder cost volume radius)")
    p.add_argument("--shift-mask", type=float, default=0.0, help="lam.shift_mask (0 = off)")
    p.add_argument("--quantizer", choices=("vq", "fsq"), default="vq", help="lam.quantizer (fsq: levels 2,2,2)")
    p.add_argument("--code-norm", action="store_true", help="lam.code_norm: standardise encoder outputs over the batch")
    p.add_argument("--lr", type=float, default=None, help="default 1e-3 (oracle/const), 5e-4 (probe), 3e-4 (lam)")
    p.add_argument("--every", type=int, default=50, help="print every N steps")
    a = p.parse_args(argv)
    torch.manual_seed(0)
    ds = VideoDataset(a.data)
    eps, rng = list(ds.split("train")), np.random.default_rng(0)
    if a.weather:
        eps = [e for e in eps if (e.params or {}).get("weather") == a.weather and not e.events]
        if not eps:
            raise SystemExit(f"{a.data} has no event-free train episode with weather {a.weather!r}")
    if ds.actions(eps[0], effective=True) is None:
        raise SystemExit(f"{a.data} has no effective actions: use sandbox footage (`worldbridge data generate`)")
    cfg = get_preset("tiny").lam
    cfg.patch, cfg.motion_shifts, cfg.decoder_context = a.patch, tuple(a.shifts), a.context
    cfg.motion_features, cfg.shift_mask, cfg.quantizer, cfg.code_norm = a.motion_features, a.shift_mask, a.quantizer, a.code_norm
    lam = LatentActionModel(cfg, ds.height, ds.width)
    emb = nn.Embedding(len(ds.action_names), lam.quant.dim)
    zero = torch.zeros(())
    true: dict[str, torch.Tensor] = {}
    head = nn.Linear(lam.quant.dim, len(ds.action_names))

    def probe(frames: torch.Tensor) -> dict[str, torch.Tensor]:  # encoder (before quantizing) -> true action
        logits = head(lam.features(frames))
        loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), true["a"].flatten())
        return {"loss": loss, "acc": (logits.argmax(-1) == true["a"]).float().mean()}

    def encode(frames: torch.Tensor):  # replaces the LAM encoder: the code is the true action (or always 0)
        idx = true["a"] if a.mode == "oracle" else torch.zeros_like(true["a"])
        return idx, emb(idx), {"loss": zero, "entropy": zero, "entropy_bonus": zero}

    if a.mode in ("oracle", "const"):
        lam.encode = encode
    lr = a.lr or {"probe": 5e-4, "lam": 3e-4}.get(a.mode, 1e-3)
    held_out = held_out_clips(ds) if a.mode == "lam" else None
    betas = (0.9, 0.95) if a.mode == "lam" else (0.9, 0.999)  # lam: as `train dynamics`; the others as measured
    opt = torch.optim.AdamW([*lam.parameters(), *emb.parameters(), *head.parameters()], lr=lr, betas=betas)
    hist, majority, t0 = [], [], time.time()
    for step in range(1, a.steps + 1):
        clips, acts = [], []
        for _ in range(a.batch):
            ep = eps[rng.integers(len(eps))]
            s = int(rng.integers(0, ep.length - a.clip))
            clips.append(np.asarray(ds.frames(ep)[s:s + a.clip]))
            acts.append(np.asarray(ds.actions(ep, effective=True)[s:s + a.clip - 1]))
        true["a"] = torch.from_numpy(np.stack(acts).astype(np.int64)).clamp(min=0)
        majority.append(float(np.bincount(true["a"].flatten().numpy()).max() / true["a"].numel()))
        x = torch.from_numpy(np.stack(clips))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.mode == "lam"):
            r = probe(x) if a.mode == "probe" else lam(x)
        opt.zero_grad()
        r["loss"].backward()
        if a.mode == "lam":
            torch.nn.utils.clip_grad_norm_(lam.parameters(), 1.0)
        opt.step()
        if a.mode == "lam":
            reset_dead_codes(lam)
        key = "acc" if a.mode == "probe" else "rel_mse"
        hist.append(float(r[key].detach()))
        if step % a.every == 0:
            row = {"mode": a.mode, "step": step, "seconds": round(time.time() - t0),
                   f"{key}_recent": round(float(np.mean(hist[-a.every:])), 4)}
            if a.mode == "probe":  # the accuracy of always answering the batch's most common action
                row["majority_recent"] = round(float(np.mean(majority[-a.every:])), 4)
            if a.mode == "lam":
                row.update(code_accuracy(lam, *held_out))
            print(json.dumps(row), flush=True)


def held_out_clips(ds: VideoDataset, n: int = 160, length: int = 8) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """A fixed set of val-split clips (all weathers), their effective actions and which steps fit the code -> action
    map: those of every other episode, as `worldbridge eval` splits them (clips of one episode overlap)."""
    if not ds.split("val"):
        raise SystemExit("--mode lam needs a dataset with a val split")
    frames, _, eff, fit = clips_with_actions(ds, ClipSampler(ds, length, "val"), n, np.random.default_rng(1))
    return torch.from_numpy(frames), eff, fit


@torch.no_grad()
def code_accuracy(lam: LatentActionModel, clips: torch.Tensor, acts: np.ndarray, fit: np.ndarray) -> dict[str, float]:
    """Codes fitted to actions on the `fit` steps, scored on the others (other episodes); codes used and their bits."""
    lam.eval()
    idx = torch.cat([lam.encode(clips[i:i + 40])[0] for i in range(0, len(clips), 40)]).numpy()
    lam.train()
    m = action_agreement(idx, acts, lam.num_actions, int(acts.max()) + 1, fit)
    usage, bits = code_stats(idx, lam.num_actions)
    return {"accuracy": round(m["many_to_one"], 4), "chance": round(m["chance"], 4), "codes_used": usage,
            "bits": round(bits, 3)}


if __name__ == "__main__":
    main()
