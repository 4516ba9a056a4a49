"""The latent action model's motion decoder path and the oracle diagnostic."""

import json

import pytest
import torch

from bridge.model.latent_actions import LatentActionModel, motion_cost
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


def test_motion_features_point_at_the_shift_that_maps_one_frame_onto_the_next():
    x = torch.rand(1, 16, 20, 3)
    clip = torch.stack([x[:, :, 2:18], x[:, :, 1:17], x[:, :, 0:16]], 1)  # (1, 3, 16, 16, 3): content pans 1 px right per frame
    feats = motion_cost(clip, 1, 8)  # (1, 3, 4 patches, 2 * 9 shifts)
    assert feats.shape == (1, 3, 4, 18)
    shifts = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    local, whole = feats[..., :9], feats[..., 9:]
    assert torch.allclose(feats.sum(-1), torch.full((1, 3, 4), 2.0), atol=1e-5)  # two distributions over shifts
    assert (whole[0, 0].argmax(-1) == shifts.index((0, 0))).all()  # the first frame is compared with itself
    assert (whole[0, 1:].argmax(-1) == shifts.index((1, 0))).all() and (whole[0, 1:, :, shifts.index((1, 0))] > 0.9).all()
    assert (local[0, 1:].argmax(-1) == shifts.index((1, 0))).all()


def test_motion_features_widen_only_the_encoder_input_and_stay_off_by_default():
    cfg = get_preset("micro").lam
    plain = LatentActionModel(cfg, 16, 16)
    cfg.motion_features = 1
    lam = LatentActionModel(cfg, 16, 16)
    assert lam.enc_in.in_features == plain.enc_in.in_features + 18
    assert set(lam.state_dict()) == set(plain.state_dict())  # same keys: old checkpoints load when it is off
    idx, q, _ = lam.encode(torch.randint(0, 255, (2, 4, 16, 16, 3), dtype=torch.uint8))
    assert idx.shape == (2, 3) and q.shape[:2] == (2, 3)


def test_oracle_diagnostic_prints_the_decoder_error(tmp_path, capsys):
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=20)
    lam_oracle.main(["--data", str(ds), "--mode", "oracle", "--steps", "4", "--every", "2", "--batch", "2"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and all(0 < r["rel_mse_recent"] < float("inf") for r in rows)


def test_probe_mode_reports_the_encoders_accuracy_next_to_the_majority_class(tmp_path, capsys):
    ds = write_square_dataset(tmp_path / "ds", episodes=4, length=20)
    lam_oracle.main(["--data", str(ds), "--mode", "probe", "--steps", "4", "--every", "2", "--batch", "2",
                     "--motion-features", "1"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    assert all(0 <= r["acc_recent"] <= 1 and 0 < r["majority_recent"] <= 1 for r in rows)


def test_weather_filter_names_the_problem_when_no_episode_matches(tmp_path):
    ds = write_square_dataset(tmp_path / "ds", episodes=2, length=12)
    with pytest.raises(SystemExit, match="no event-free train episode with weather 'clear'"):
        lam_oracle.main(["--data", str(ds), "--weather", "clear", "--steps", "1"])


def test_shift_mask_keeps_the_panned_scene_and_drops_a_sprite_that_moved_on_its_own():
    from bridge.model.latent_actions import shift_explained

    x = torch.rand(1, 16, 20, 3) * 0.2
    a, b = x[:, :, 2:18].clone(), x[:, :, 1:17].clone()  # the scene pans 1 px right
    b[:, 0:4, 0:4] = 1.0  # a bright sprite appears at the top left
    m = shift_explained(torch.stack([a, b], 1), 2, 0.04)
    assert m.shape == (1, 1, 16, 16, 1)
    assert m[0, 0, 6:, 4:].mean() == 1.0 and m[0, 0, 0:4, 0:4].sum() == 0


def test_shift_mask_loss_trains_and_is_off_by_default():
    cfg = get_preset("micro").lam
    assert cfg.shift_mask == 0
    cfg.shift_mask = 0.04
    lam = LatentActionModel(cfg, 16, 16)
    out = lam(torch.randint(0, 255, (2, 4, 16, 16, 3), dtype=torch.uint8))
    out["loss"].backward()
    assert torch.isfinite(out["rel_mse"]) and lam.dec_in.weight.grad is not None


@pytest.mark.parametrize("quantizer", ["vq", "fsq"])
def test_lam_mode_scores_its_codes_against_the_true_actions(tmp_path, capsys, quantizer):
    ds = write_square_dataset(tmp_path / "ds", episodes=6, length=20)
    lam_oracle.main(["--data", str(ds), "--mode", "lam", "--steps", "2", "--every", "2", "--batch", "2",
                     "--shift-mask", "0.04", "--motion-features", "1", "--quantizer", quantizer])
    row = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert 0 <= row["accuracy"] <= 1 and 0 < row["chance"] <= 1 and 0 < row["codes_used"] <= 1


def test_code_norm_spreads_outputs_that_all_point_one_way_and_is_off_by_default():
    cfg = get_preset("micro").lam
    assert not cfg.code_norm
    plain = LatentActionModel(cfg, 16, 16)
    cfg.code_norm = True
    lam = LatentActionModel(cfg, 16, 16)
    assert set(lam.state_dict()) - set(plain.state_dict()) == {f"code_norm.{k}" for k in
                                                               ("running_mean", "running_var", "num_batches_tracked")}
    with torch.no_grad():
        lam.to_code.bias.fill_(100.0)  # every raw output is ~ (100, 100, ...): one direction, one code
    frames = torch.randint(0, 255, (8, 4, 16, 16, 3), dtype=torch.uint8)
    z = lam.features(frames).flatten(0, 1)
    assert z.mean(0).abs().max() < 1e-3 and (z.std(0) - 1).abs().max() < 0.05  # centred and unit over the batch
    idx, _, _ = lam.encode(frames)
    assert len(idx.unique()) > 1
    with torch.no_grad():
        for _ in range(200):  # the running statistics settle on this batch's
            lam.features(frames)
    lam.eval()  # then one clip alone is treated as it was inside the batch
    assert torch.allclose(lam.features(frames[:1]), z.view(8, 3, -1)[:1], atol=0.1)


def test_lam_mode_scores_its_codes_only_on_episodes_the_map_was_not_fitted_on(tmp_path, monkeypatch):
    """`--mode lam` fitted the code -> action map on half of 160 overlapping clips and scored the other half, so
    scored steps had been seen by the fit; it now splits by episode, as `worldbridge eval` does."""
    import numpy as np

    from bridge.data.dataset import VideoDataset

    ds = VideoDataset(write_square_dataset(tmp_path / "ds", episodes=8, length=20))
    clips, acts, fit = lam_oracle.held_out_clips(ds, n=40)
    assert clips.shape[:2] == (40, 8) and acts.shape == fit.shape == (40, 7)
    assert fit.any() and not fit.all() and (fit.all(1) | ~fit.any(1)).all()  # whole clips on one side
    lam = LatentActionModel(get_preset("micro").lam, 16, 16)
    lam.encode = lambda x: (torch.zeros(x.shape[0], x.shape[1] - 1, dtype=torch.long),)  # one code for every step
    acts = np.where(fit, 1, 2)  # code 0 means action 1 where fitted, 2 where scored: a memory scores > 0
    assert lam_oracle.code_accuracy(lam, clips, acts, fit)["accuracy"] == 0.0
