"""Per-frame rollout cost of a preset (weights do not matter for speed): `python -m bridge.model.speed --preset tiny`."""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

import click
import torch

from bridge.backend import Prompt
from bridge.model.checkpoint import save_model, state_tensors
from bridge.model.genie import WorldModel
from bridge.model.presets import get_preset
from bridge.model.world import load_world


def measure(preset: str, frames: int = 60, steps: int | None = None, autocast: bool | None = None,
            device: str | None = None, cfg: float | None = None, threads: int | None = None) -> dict[str, float]:
    """Median ms per generated frame (dynamics incl. all MaskGIT steps + commit, and decode) of a random-init preset."""
    if threads:
        torch.set_num_threads(threads)
    wcfg = get_preset(preset)
    torch.manual_seed(0)
    model = WorldModel(wcfg, bank_size=1)
    with tempfile.TemporaryDirectory() as tmp:
        save_model(Path(tmp), "world", wcfg, state_tensors(model), {"step": 0}, 0)
        world = load_world(tmp, device=device, autocast=autocast)
    world.configure(steps=steps, cfg=cfg)
    world.reset(Prompt(seed=0))
    dyn, dec = [], []
    for i in range(frames + 10):  # 10 warm-up frames also fill the context window
        world.step(i % world.num_latent_actions)
        if i >= 10:
            dyn.append(world.last_timings["dynamics"])
            dec.append(world.last_timings["decode"])
    d, e = statistics.median(dyn), statistics.median(dec)
    return {"preset": preset, "device": str(world.device), "autocast_bf16": world.autocast, **world.settings,
            "threads": torch.get_num_threads(), "dynamics_ms": round(d, 2), "decode_ms": round(e, 2),
            "frame_ms": round(d + e, 2), "fps": round(1000 / (d + e), 1)}


@click.command()
@click.option("--preset", default="tiny", show_default=True)
@click.option("--frames", default=60, show_default=True)
@click.option("--steps", type=int, default=None, help="MaskGIT steps (default: the preset's)")
@click.option("--cfg", type=float, default=None, help="guidance scale (1 = off, >1 doubles the batch)")
@click.option("--autocast/--no-autocast", default=None, help="bf16 autocast (default: auto)")
@click.option("--device", default=None)
@click.option("--threads", type=int, default=None)
def main(preset: str, frames: int, steps: int | None, cfg: float | None, autocast: bool | None, device: str | None,
         threads: int | None) -> None:
    """Print one JSON line with the per-frame rollout time of a preset."""
    print(json.dumps(measure(preset, frames, steps, autocast, device, cfg, threads)))


if __name__ == "__main__":
    main()
