"""`worldbridge demo`, the README's first command: a scripted session through the real protocol, rerunnable."""

import json

from click.testing import CliRunner

from bridge.demo import SCRIPT, demo, fresh_stem


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
    assert "test backend" in r.stderr  # says the sandbox game is running, not the world model
    assert [rep["recording"] for rep in reports] == [str(out / "demo.wbrec"), str(out / "demo-2.wbrec")]
    assert sorted(first) == ["demo.gif", "demo.mp4", "demo.wbrec"]
    for name, data in first.items():
        assert (out / name).read_bytes() == data  # the rerun wrote next to the first run, not over it
    for rep in reports:
        assert rep["backend_kind"] == "sandbox" and rep["frames"] == sum(n for n, _, _ in SCRIPT) + 48
        assert rep["fps"] > 0 and rep["latency_ms_p95"] >= rep["latency_ms_p50"] > 0
        stem = rep["recording"][: -len(".wbrec")]
        assert sorted(rep["outputs"].values()) == [stem + ".gif", stem + ".mp4"]
