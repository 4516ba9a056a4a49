"""The latent action model's motion decoder path and the oracle diagnostic."""

import json

import torch

from bridge.model.latent_actions import LatentActionModel
from bridge.model.presets import get_preset
from bridge.train import lam_oracle
from test_model_data import write_square_dataset

torch.set_num_threads(1)


def test_motion_path_reproduces_a_one_pixel_pan_exactly():
    cfg = get_preset("micro").lam
    cfg.motion_shifts = (1, 1)
    lam = LatentActionModel(cfg, 16, 16)
    pick = lam.shifts.index((1, 0))  # content moves one pixel to the right
    with torch.no_grad():
        lam.dec_motion.bias[pick] = 50.0  # every patch picks that shift
    x = torch.rand(1, 1, 16, 16, 3)
    moved = lam._motion(x, torch.zeros(1, 1, (16 // cfg.patch) ** 2, cfg.dim))
    want = x[:, :, :, :-1] - x[:, :, :, 1:]  # x(t+1)[col c] = x(t)[col c-1]
    assert torch.allclose(moved[:, :, :, 1:], want, atol=1e-5)
    assert torch.allclose(moved[:, :, :, 0], torch.zeros_like(moved[:, :, :, 0]), atol=1e-5)  # replicated edge


def test_motion_path_is_off_by_default_so_old_checkpoints_keep_their_keys():
    lam = LatentActionModel(get_preset("micro").lam, 16, 16)
    assert lam.shifts == [] and not any(k.startswith("dec_motion") for k in lam.state_dict())


def test_oracle_diagnostic_prints_the_decoder_error(tmp_path, capsys):
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=20)
    lam_oracle.main(["--data", str(ds), "--mode", "oracle", "--steps", "4", "--every", "2", "--batch", "2"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and all(0 < r["rel_mse_recent"] < float("inf") for r in rows)
