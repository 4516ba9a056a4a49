"""`worldbridge bench` on a world model: the model report (stages, FLOPs, peak, utilisation, steps), sessions
scaling, --quick and --rollout-health, and their clear errors."""

import json
import re

import pytest
import torch
from click.testing import CliRunner

from bridge.host.bench import TARGET, bench
from test_model_data import DAMAGE, USAGE_DAMAGE, damaged_checkpoint, save_random_world
from test_train_eval import undocumented

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    return save_random_world(tmp_path_factory.mktemp("bench") / "world")


def _json(res):
    assert res.exit_code == 0, res.output
    return json.loads(res.output[res.output.index("{"):])


BENCH_DOC = "### `worldbridge bench"


@pytest.fixture(scope="module")
def world_report(world_dir):
    """One quick bench of the world model, as JSON."""
    return _json(CliRunner().invoke(bench, ["--json", "--checkpoint", str(world_dir), "--quick", "--host", "thread",
                                            "--frames", "20", "--no-scaling"]))


def test_world_model_bench_json_has_every_promised_figure(world_report):
    r = world_report
    assert r["backend_kind"] == "world_model" and r["quick"] is True and r["frames"] == 20
    for key in ("in_process", "end_to_end"):
        assert set(r[key]) == {"fps", "latency_ms_p50", "latency_ms_p95"} and r[key]["fps"] > 0
    assert r["protocol_overhead_ms_p95"] >= 0
    st = r["stages_ms"]
    assert len(st["dynamics_per_step"]) == 4 and st["tokenize"] > 0 and st["decode"] > 0 and st["commit"] > 0
    assert st["dynamics"] >= 0.9 * (sum(st["dynamics_per_step"]) + st["commit"])
    assert r["flops_per_frame"] > r["flops_per_frame_measured"] > 0  # analytic adds attention to the counted matmuls
    assert r["compute_dtype"] in ("bf16", "fp32") and set(r["matmul_peak_gflops"]) == {"fp32", "bf16"}
    expected = r["flops_per_frame"] / (st["frame"] / 1e3) / 1e9
    assert r["achieved_gflops"] == pytest.approx(expected, rel=0.01)
    assert r["utilisation"] == pytest.approx(r["achieved_gflops"] / r["matmul_peak_gflops"][r["compute_dtype"]],
                                             rel=0.01)
    assert [row["steps"] for row in r["steps_sweep"]] == [2, 4, 6, 8] and all(x["fps"] > 0 for x in r["steps_sweep"])
    assert "rollout_health" not in r and "sessions_scaling" not in r
    w = r["warmup"]
    assert w["host_ready_s"] > 0 and w["start_to_frame0_ms"] > 0 and len(w["first_frames_ms"]) == 5


def test_the_bar_counts_the_model_report_with_rate_and_eta(world_dir):
    """The model stages, FLOPs and steps sweep were not in the bar's total: it sat at 50 % with no ETA through them."""
    from bridge.model.speed import report_frames
    from bridge.model.world import load_world

    res = CliRunner().invoke(bench, ["--json", "--checkpoint", str(world_dir), "--quick", "--host", "thread",
                                     "--frames", "20", "--no-scaling"])
    _json(res)
    total = 2 * 20 + report_frames(load_world(world_dir, device="cpu"), quick=True)
    model = re.findall(r"bench: model stages, FLOPs, peak, MaskGIT steps: +\d+%\|[^|]*\| (\d+)/(\d+) "
                       r"\[\d\d:\d\d<\d\d:\d\d, +[\d.]+frame/s\]", res.stderr)
    assert model and {int(t) for _, t in model} == {total}, res.stderr[-2000:]
    assert max(int(n) for n, _ in model) > 20 + (total - 40) // 2  # it moves through the report, not only at its ends


def test_every_key_bench_prints_is_in_the_docs(world_report):
    """threads, device and machine were printed but not explained anywhere."""
    assert {"threads", "device", "machine", "target", "target_met"} <= set(world_report)
    assert not undocumented(world_report, BENCH_DOC), undocumented(world_report, BENCH_DOC)


def test_warmup_counts_from_launching_the_host_process():
    """The subprocess host's warm-up includes starting Python in a new process, so it cannot be near zero."""
    res = CliRunner().invoke(bench, ["--json", "--backend", "sandbox", "--frames", "10", "--no-scaling"])
    r = _json(res)
    # the bar counts the measured frames (10 in-process, 10 end to end) with their rate and ETA: it counted phases
    assert re.search(r"bench: end to end: +\d+%\|[^|]*\| 1\d/20 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+frame/s\]", res.stderr), res.stderr
    w = r["warmup"]
    assert set(w) == {"host_ready_s", "start_to_frame0_ms", "first_frames_ms"}
    assert w["host_ready_s"] > 0.05 and w["start_to_frame0_ms"] > 0
    assert len(w["first_frames_ms"]) == 5 and min(w["first_frames_ms"]) > 0


@pytest.mark.slow
def test_world_model_sessions_scaling(world_dir):
    r = _json(CliRunner().invoke(bench, ["--json", "--checkpoint", str(world_dir), "--quick", "--host", "thread"]))
    assert r["frames"] == 60
    rows = r["sessions_scaling"]
    assert [row["sessions"] for row in rows] == [1, 2, 4, 8]
    assert all(row["fps_total"] > 0 and row["latency_ms_p95"] >= row["latency_ms_p50"] for row in rows)


def test_rollout_health_needs_a_calibrated_world_model(world_dir):
    res = CliRunner().invoke(bench, ["--checkpoint", str(world_dir), "--rollout-health", "10", "--quick"])
    assert res.exit_code != 0 and "no health range" in res.output and "health calibrate" in res.output
    res = CliRunner().invoke(bench, ["--backend", "sandbox", "--rollout-health", "10"])
    assert res.exit_code != 0 and "--checkpoint" in res.output


def test_rollout_health_is_reported(tmp_path):
    from bridge.model.health import save_range

    world = save_random_world(tmp_path / "w")
    span = {"distinct": [1, 16], "max_share": [0.0, 1.0], "entropy": [0.0, 4.0], "change": [0.0, 0.5]}
    save_range(world, {"stats": span, "vocab": 64})
    res = CliRunner().invoke(bench, ["--json", "--checkpoint", str(world), "--quick", "--host", "thread",
                                     "--no-scaling", "--frames", "10", "--rollout-health", "12"])
    r = _json(res)
    # 5 rollouts (the settings', then 2/4/6/8 steps), 5 x N frames: each shows its rate and ETA (it showed none)
    bars = res.stderr.split("health: rollout:   0%|")[1:]  # tqdm may redraw a finished bar: count the bars' starts
    assert len(bars) == 5, res.stderr
    assert all(re.search(r"health: rollout: 100%\|[^|]*\| 12/12 \[\d\d:\d\d<00:00, +[\d.]+frame/s\]", b) for b in bars)
    h = r["rollout_health"]
    assert h["frames"] == 12 and 0.0 <= h["within_range"] <= 1.0 and h["range"] == span
    # an untrained world samples near-uniform codes: a new token map every frame, so `change` is far above 0.5
    assert h["failures_by_stat"]["change"] >= 10 and h["first_failure"] == 1
    assert set(r["rollout_health_by_steps"]) == {"2", "4", "6", "8"}
    assert not undocumented(r, BENCH_DOC), undocumented(r, BENCH_DOC)
    assert all(0.0 <= v <= 1.0 for v in r["rollout_health_by_steps"].values())


def test_bench_cfg_sets_every_sessions_action_guidance(world_dir):
    r = _json(CliRunner().invoke(bench, ["--json", "--checkpoint", str(world_dir), "--quick", "--host", "thread",
                                         "--frames", "10", "--no-scaling", "--cfg", "1.5"]))
    assert r["settings"]["cfg"] == 1.5 and r["end_to_end"]["fps"] > 0
    plain = _json(CliRunner().invoke(bench, ["--json", "--checkpoint", str(world_dir), "--quick", "--host", "thread",
                                             "--frames", "10", "--no-scaling"]))
    assert plain["settings"]["cfg"] == 1.0
    res = CliRunner().invoke(bench, ["--backend", "sandbox", "--cfg", "1.5"])
    assert res.exit_code != 0 and "sandbox" in res.output


def test_a_negative_cfg_is_one_clear_error(world_dir):
    res = CliRunner().invoke(bench, ["--checkpoint", str(world_dir), "--quick", "--no-scaling", "--host", "thread",
                                     "--frames", "10", "--cfg", "-1"])
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output  # click's usage error, not a crash
    assert "Invalid value for '--cfg'" in res.output, res.output


@pytest.mark.parametrize("how", DAMAGE)
def test_a_bad_checkpoint_is_one_clear_error(tmp_path, how):
    """With --rollout-health too it names the damage: the card's health range was checked before the weights were
    read, so a damaged checkpoint with a valid card said "no health range ... calibrate"."""
    args = ["--checkpoint", str(damaged_checkpoint(tmp_path, how)), "--quick", "--no-scaling", "--host", "thread"]
    said = []
    for health in ([], ["--rollout-health", "5"]):
        res = CliRunner().invoke(bench, args + health)
        said.append(res.output.split("\r")[-1])  # after the progress bar, which clears its line
        code = 2 if how in USAGE_DAMAGE else 1
        assert res.exit_code == code and "Error: " in said[-1] and str(tmp_path / "ck") in said[-1], res.output
    assert said[0] == said[1]


def test_an_unreadable_checkpoint_is_one_clear_error(world_dir, monkeypatch):
    """Permission denied on model.safetensors was a traceback: bench caught only CheckpointError."""
    from test_model_checkpoint import _refuse

    _refuse(monkeypatch, "model.safetensors", PermissionError(13, "Permission denied"))
    res = CliRunner().invoke(bench, ["--checkpoint", str(world_dir), "--quick", "--no-scaling", "--host", "thread"])
    said = res.output.split("\r")[-1]
    assert res.exit_code == 1 and said.startswith(f"Error: {world_dir / 'model.safetensors'} cannot be read"), res.output


def test_a_rollout_health_of_one_frame_counts_one_frame(world_dir, monkeypatch):
    """The report printed "rollout health: 100.0 % of 1 frames within range"."""
    lat = {"fps": 1.0, "latency_ms_p50": 1.0, "latency_ms_p95": 1.0}
    report = {"backend_name": "w", "backend_kind": "world_model", "width": 8, "height": 8, "in_process": lat,
              "end_to_end": lat, "protocol_overhead_ms_p95": 0.1,
              "warmup": {"host_ready_s": 0.1, "start_to_frame0_ms": 1.0, "first_frames_ms": [1.0]},
              "rollout_health": {"within_range": 1.0, "frames": 1, "first_failure": None},
              "rollout_health_by_steps": {"4": 1.0}}
    monkeypatch.setattr("bridge.host.bench.run_bench", lambda *a, **k: report)
    monkeypatch.setattr("bridge.host.backends.announce", lambda spec: None)
    res = CliRunner().invoke(bench, ["--checkpoint", str(world_dir), "--rollout-health", "1"])
    assert res.exit_code == 0 and "rollout health: 100.0 % of 1 frame within range" in res.output, res.output


@pytest.mark.parametrize("fps, p95, says", [
    (30.0, 40.0, "target 24 frames/s end to end, p95 <= 60 ms: met"),
    (18.0, 40.0, "target 24 frames/s end to end, p95 <= 60 ms: not met (18.00 frames/s is below 24)"),
    (30.0, 67.0, "target 24 frames/s end to end, p95 <= 60 ms: not met (p95 67.00 ms is above 60)"),
    (24.0, 60.0, "target 24 frames/s end to end, p95 <= 60 ms: met"),
])
def test_the_summary_says_whether_end_to_end_meets_the_target(world_dir, monkeypatch, fps, p95, says):
    """bench printed fps and latency with no target beside them: a reader could not tell 18 frames/s was too slow."""
    lat = {"fps": fps, "latency_ms_p50": 1.0, "latency_ms_p95": p95}
    report = {"backend_name": "w", "backend_kind": "world_model", "width": 8, "height": 8, "in_process": lat,
              "end_to_end": lat, "protocol_overhead_ms_p95": 0.1,
              "warmup": {"host_ready_s": 0.1, "start_to_frame0_ms": 1.0, "first_frames_ms": [1.0]}}
    monkeypatch.setattr("bridge.host.bench.run_bench", lambda *a, **k: report)
    monkeypatch.setattr("bridge.host.backends.announce", lambda spec: None)
    res = CliRunner().invoke(bench, ["--checkpoint", str(world_dir)])
    assert res.exit_code == 0 and says in res.output.splitlines(), res.output


def test_json_gives_the_target_and_whether_end_to_end_met_it():
    r = _json(CliRunner().invoke(bench, ["--json", "--backend", "sandbox", "--frames", "10", "--no-scaling",
                                         "--host", "thread"]))
    assert r["target"] == {"fps": 24, "latency_ms_p95": 60}
    e2e = r["end_to_end"]
    assert r["target_met"] is (e2e["fps"] >= 24 and e2e["latency_ms_p95"] <= 60)
    assert {"in_process", "end_to_end", "warmup", "protocol_overhead_ms_p95", "machine"} <= set(r)  # kept as they were


def test_help_says_what_is_measured_which_way_is_better_the_target_and_the_default_world():
    out = CliRunner().invoke(bench, ["--help"]).output
    for says in ("fps (frames/s, higher is better)", "latency_ms_p50/p95 (ms, lower is better)",
                 f"target: {TARGET['fps']} frames/s end to end, p95 {TARGET['latency_ms_p95']} ms",  # the one it checks
                 "default: the embedded default world",
                 "the sandbox game (a test backend, not a world model)"):
        assert says in " ".join(out.split()), (says, out)
