"""`worldbridge demo`, the README's first command: a scripted session through the real protocol, rerunnable."""

import json
import re
from pathlib import Path

import pytest

from click.testing import CliRunner

from bridge.demo import AFTER_BRANCH, BRANCH_AT, SCRIPT, demo, fresh_stem
from test_export import read_labels
from test_model_data import DAMAGE, USAGE_DAMAGE, damaged_checkpoint, save_random_world


def test_fresh_stem_skips_every_name_an_earlier_run_used(tmp_path):
    assert fresh_stem(tmp_path) == "demo"
    (tmp_path / "demo.gif").write_bytes(b"x")  # a half-finished earlier run still holds its name
    assert fresh_stem(tmp_path) == "demo-2"
    (tmp_path / "demo-2.wbrec").write_bytes(b"x")
    assert fresh_stem(tmp_path) == "demo-3"


def test_demo_runs_twice_in_one_folder_and_keeps_the_first_run(tmp_path):
    out = tmp_path / "demo_out"
    reports = []
    for _ in range(2):
        r = CliRunner().invoke(demo, ["--backend", "sandbox", "--out", str(out)])
        assert r.exit_code == 0, r.output
        reports.append(json.loads(r.stdout))
        if len(reports) == 1:
            first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "serving: SANDBOX GAME (test backend, not the world model): sandbox game" in r.stderr  # says the sandbox game is running, not the world model
    total = sum(n for n, _, _ in SCRIPT) + AFTER_BRANCH  # the session's own bar, with rate and ETA (it had none)
    assert re.search(rf"demo: 100%\|[^|]*\| {total}/{total} \[\d\d:\d\d<00:00, +[\d.]+frame/s\]", r.stderr), r.stderr
    assert [rep["recording"] for rep in reports] == [str(out / "demo.wbrec"), str(out / "demo-2.wbrec")]
    assert sorted(first) == ["demo.gif", "demo.mp4", "demo.wbrec"]
    for name, data in first.items():
        assert (out / name).read_bytes() == data  # the rerun wrote next to the first run, not over it
    for rep in reports:
        assert rep["backend_kind"] == "sandbox" and rep["frames"] == total
        assert rep["fps"] > 0 and rep["latency_ms_p95"] >= rep["latency_ms_p50"] > 0
        w = rep["warmup"]  # launch -> hello, start -> frame 0, then the first frames' latencies
        assert w["host_ready_s"] > 0 and w["start_to_frame0_ms"] > 0
        assert len(w["first_frames_ms"]) == 5 and min(w["first_frames_ms"]) > 0
        stem = rep["recording"][: -len(".wbrec")]
        assert sorted(rep["outputs"].values()) == [stem + ".gif", stem + ".mp4"]
        for video in rep["outputs"].values():  # the clips themselves say it is the sandbox, wherever they go
            assert read_labels(video) == ["WorldBridge — SANDBOX GAME (test backend, not the world model): sandbox game"]


def test_the_report_gives_every_path_absolute_from_a_relative_out(tmp_path, monkeypatch):
    """With the default --out demo_out the JSON gave `recording` absolute (the host's record reply) but `outputs` as
    demo_out/demo.mp4 and demo_out/demo.gif: relative to a folder a reader of the report may not know."""
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(demo, ["--backend", "sandbox"])
    assert r.exit_code == 0, r.output
    rep, out = json.loads(r.stdout), tmp_path / "demo_out"
    assert rep["recording"] == str(out / "demo.wbrec")
    assert rep["outputs"] == {"mp4": str(out / "demo.mp4"), "gif": str(out / "demo.gif")}
    assert rep["last_frame"] == {"index": BRANCH_AT + AFTER_BRANCH, "epoch": 1}  # the branch began epoch 1


@pytest.mark.parametrize("how", DAMAGE)
def test_a_bad_checkpoint_is_one_clear_error_and_leaves_no_out_folder(tmp_path, how):
    out = tmp_path / "demo_out"
    r = CliRunner().invoke(demo, ["--checkpoint", str(damaged_checkpoint(tmp_path, how)), "--out", str(out)])
    assert r.exit_code == (2 if how in USAGE_DAMAGE else 1), r.output
    assert r.output.count("Error: ") == 1 and "Traceback" not in r.output, r.output
    assert str(tmp_path / "ck") in r.output  # names the checkpoint (or its file) at fault
    assert not out.exists()


@pytest.mark.parametrize("args, says, code", [
    (["--checkpoint", "x", "--backend", "sandbox"], "not both", 2),
    (["--backend", "sandbox", "--out", "{file}"], "is a file", 2),
    (["--backend", "sandbox", "--out", "/proc/worldbridge-demo"], "cannot create --out", 1),
])
def test_bad_options_are_one_clear_error(tmp_path, args, says, code):
    file = tmp_path / "some.mp4"
    file.write_bytes(b"x")
    r = CliRunner().invoke(demo, [a.format(file=file) for a in args])
    assert r.exit_code == code and says in r.output and r.output.count("Error: ") == 1, r.output
    assert file.read_bytes() == b"x"


@pytest.mark.parametrize("seed", ["-1", str(2**63)])
def test_a_seed_outside_the_protocols_range_is_a_usage_error(tmp_path, seed):
    r = CliRunner().invoke(demo, ["--backend", "sandbox", "--out", str(tmp_path / "d"), "--seed", seed])
    assert r.exit_code == 2 and "Invalid value for '--seed'" in r.output, r.output
    assert not (tmp_path / "d").exists()


def _unprivileged() -> list[str]:
    """A command prefix that drops root's permission override (CAP_DAC_OVERRIDE), so a read-only folder is one."""
    import os
    import shutil
    import subprocess

    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search", "--"]
    if not shutil.which("setpriv") or subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("root without a working setpriv (a container may refuse it): a folder cannot be made read-only")
    return prefix


def test_a_read_only_out_is_named_before_the_host_starts(tmp_path, monkeypatch):
    """Not "the demo failed: bad_argument: cannot write …/demo.wbrec" once the session is playing."""
    import subprocess
    import sys

    import bridge.host.server as server

    def no_host(*args, **kwargs):
        raise AssertionError("the host started although --out cannot be written")

    monkeypatch.setattr(server, "run_host_in_thread", no_host)
    r = CliRunner().invoke(demo, ["--backend", "sandbox", "--out", "/sys"])  # read-only even for root
    assert r.exit_code == 1 and r.output.startswith("Error: cannot write into --out /sys ("), r.output  # a container's
    assert r.output.rstrip().endswith("): give a folder you can write to"), r.output  # /sys is often read-only: EROFS
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    code = ("import bridge.host.server as s, bridge.demo as d, sys; s.run_host_in_thread = None; "
            "d.demo(['--backend', 'sandbox', '--out', sys.argv[1]])")
    p = subprocess.run([*_unprivileged(), sys.executable, "-c", code, str(ro)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and f"Error: cannot write into --out {ro} (Permission denied)" in p.stderr, p.stderr
    assert list(ro.iterdir()) == []


def test_a_world_without_text_conditioning_plays_without_the_default_text_but_refuses_a_given_one(tmp_path,
                                                                                                  monkeypatch):
    from bridge.client import WorldClient

    starts = []
    start = WorldClient.start
    monkeypatch.setattr(WorldClient, "start", lambda self, **kw: starts.append(kw.get("text")) or start(self, **kw))
    world = save_random_world(tmp_path / "w")  # no first-frame model: its sessions lack text_prompt
    r = CliRunner().invoke(demo, ["--checkpoint", str(world), "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output  # was: the demo failed: bad_prompt (since the host refuses unreadable text)
    assert starts == [None]  # decided before starting: one start, no refused one first (warm-up counts only it)
    assert "without its default text prompt" in r.stderr and json.loads(r.stdout)["backend_kind"] == "world_model"
    assert json.loads(r.stdout)["threads"] == 1  # the CPU threads it ran on are reported (tests: OMP_NUM_THREADS=1)
    assert r.stderr.count("event (neither typed nor free text): skipped") == 2  # it has no events either
    r = CliRunner().invoke(demo, ["--checkpoint", str(world), "--out", str(tmp_path / "b"), "--text", "a cave"])
    assert r.exit_code == 1 and "bad_prompt" in r.output and not (tmp_path / "b").exists()  # asked for: not dropped


@pytest.mark.parametrize("fresh", [True, False])
def test_ctrl_c_mid_session_keeps_the_recording_so_far_and_says_so(tmp_path, monkeypatch, fresh):
    """Was: click's bare "Aborted!", and a demo_out the run had made was removed with the recording in it."""
    from bridge.client import WorldClient
    from bridge.host.recording import RecordingReader

    step, played = WorldClient.step, []

    def interrupted(self, *args, **kwargs):
        played.append(1)
        if len(played) == 30:
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    monkeypatch.setattr(WorldClient, "step", interrupted)
    out = tmp_path / "demo_out"
    if not fresh:
        out.mkdir()
    r = CliRunner().invoke(demo, ["--backend", "sandbox", "--out", str(out)])
    rec = out / "demo.wbrec"
    assert r.exit_code == 130 and r.stderr.endswith(f"stopped: the session so far is kept in {rec} (`worldbridge "
                                                    f"record export {rec} --mp4 CLIP.mp4` makes its clip); no MP4 or "
                                                    "GIF was written\n"), r.output
    assert [p.name for p in out.iterdir()] == ["demo.wbrec"]  # no half-made MP4, GIF or temp file
    reader = RecordingReader(rec)
    assert reader.frame_count == 29 and reader.complete and not reader.torn  # every step played, whole


def test_ctrl_c_before_the_recording_starts_leaves_no_out_folder(tmp_path, monkeypatch):
    from bridge.client import WorldClient

    def interrupted(self, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(WorldClient, "start", interrupted)
    out = tmp_path / "demo_out"
    r = CliRunner().invoke(demo, ["--backend", "sandbox", "--out", str(out)])
    assert r.exit_code == 130 and r.stderr.endswith(f"stopped: nothing was written to {out}\n"), r.output
    assert not out.exists()


def test_an_empty_out_is_a_usage_error_not_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(demo, ["--backend", "sandbox", "--out", ""])  # e.g. --out "$DIR" with DIR unset
    assert r.exit_code == 2 and "Invalid value for '--out': it is empty: give the folder" in r.output, r.output
    assert list(tmp_path.iterdir()) == []  # was: demo.wbrec, demo.mp4 and demo.gif in the current folder


@pytest.mark.parametrize("fresh", [True, False])
def test_a_run_whose_name_another_run_took_fails_without_touching_that_runs_recording(tmp_path, monkeypatch, fresh):
    """Two demos started together pick the same free name; the host refuses the second's recording. That run removed
    the folder it had made, with the first run's recording in it, or said the first run's file was its own."""
    from bridge.client import WorldClient

    record_start = WorldClient.record_start

    def other_run_first(self, path, *args, **kwargs):
        Path(path).write_bytes(b"the other run's recording")
        return record_start(self, path, *args, **kwargs)

    monkeypatch.setattr(WorldClient, "record_start", other_run_first)
    out = tmp_path / "demo_out"
    if not fresh:
        out.mkdir()
    r = CliRunner().invoke(demo, ["--backend", "sandbox", "--out", str(out)])
    assert r.exit_code == 1 and "Error: the demo failed: " in r.output and "kept in" not in r.output, r.output
    assert f"nothing was written to {out}" in r.output, r.output
    assert [p.name for p in out.iterdir()] == ["demo.wbrec"]
    assert (out / "demo.wbrec").read_bytes() == b"the other run's recording"
