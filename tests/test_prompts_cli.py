"""`worldbridge train prompts`: settings out of range are refused up front, not trained with or ignored."""

import pytest
from click.testing import CliRunner

from bridge.prompts.cli import train_prompts


@pytest.mark.parametrize("stage,option,value", [
    ("events", "--event-share", "1.5"), ("events", "--event-share", "-0.1"), ("events", "--hold", "0"),
    ("events", "--clip-len", "2"), ("events", "--anchor", "-1"), ("events", "--guidance", "-2"),
    ("events", "--lr", "-1e-4"), ("first-frame", "--lr", "0"), ("first-frame", "--max-minutes", "-5"),
    ("first-frame", "--max-frames", "0"), ("events", "--seed", "-1"), ("first-frame", "--seed", "-1"),
])
def test_out_of_range_settings_are_refused_before_anything_runs(tmp_path, stage, option, value):
    out = ["--out", str(tmp_path / "out")] if stage == "events" else []
    res = CliRunner().invoke(train_prompts, [stage, "--world", str(tmp_path / "w"), "--data", str(tmp_path / "d"),
                                             *out, option, value])
    assert res.exit_code == 2 and option in res.output and "Invalid value" in res.output, res.output


@pytest.mark.parametrize("stage", ["events", "first-frame"])
def test_run_options_are_passed_only_when_given_so_a_resumed_run_keeps_its_own(tmp_path, monkeypatch, stage):
    """Only --seed reached a run as None when not given; --steps, --batch, --lr, --ckpt-every and --max-minutes went
    in at their defaults, so a resumed run could not keep its own. And --max-minutes 0 (no limit, to lift a kept
    budget, as for every other stage) was refused."""
    import bridge.prompts.train as T

    kept = ("steps", "batch", "lr", "seed", "ckpt_every", "max_minutes")
    got = []
    for fn in ("train_events", "train_first_frame"):
        monkeypatch.setattr(T, fn, lambda opts: (got.append([getattr(opts, k) for k in kept]),
                                                 {"step": 1, "out": str(tmp_path)})[1])
    (tmp_path / "w").mkdir()
    (tmp_path / "d").mkdir()
    args = [stage, "--world", str(tmp_path / "w"), "--data", str(tmp_path / "d"), "--out", str(tmp_path / "out")]
    given = ["--steps", "7", "--batch", "3", "--lr", "0.002", "--seed", "3", "--ckpt-every", "5", "--max-minutes", "0"]
    for options in ([], given):
        res = CliRunner().invoke(train_prompts, [*args, *options])
        assert res.exit_code == 0, res.output
    assert got == [[None] * 6, [7, 3, 0.002, 3, 5, 0]]
    for p in train_prompts.commands[stage].params:
        if p.name in kept and p.name != "steps":  # --steps counts per run: test_steps_help_says_what_a_rerun_trains
            assert "a resumed run keeps its own]" in p.help, (p.name, p.help)
    assert res.output.startswith(f"{stage}: step 1 saved to {tmp_path} "), res.output  # as tokenizer: and decoder: do


@pytest.mark.parametrize("stage", ["events", "first-frame"])
def test_steps_help_says_what_a_rerun_trains(stage):
    """It said a rerun trains "this many more" and also that "a resumed run keeps its own": a rerun trains --steps
    more when given, else as many more as the run it resumes was given (kept_options, the card's steps_per_run)."""
    steps = next(p for p in train_prompts.commands[stage].params if p.name == "steps")
    text = " ".join(steps.help.split())
    assert "keeps its own" not in text, text
    assert "a rerun on the same --out without --steps trains as many more as the run it resumes was given" in text, text


@pytest.mark.parametrize("option", [["--event-guidance", "12"], ["--calibrate"]])
def test_eval_prompts_refuses_world_model_settings_for_the_sandbox(option):
    from bridge.prompts.cli import eval_prompts

    res = CliRunner().invoke(eval_prompts, ["--backend", "sandbox", "--only", "events", "--trials", "1", "--quiet",
                                            *option])
    assert res.exit_code == 2 and option[0] in res.output and "apply to a world model" in res.output, res.output
