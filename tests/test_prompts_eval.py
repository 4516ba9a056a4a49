"""`worldbridge eval-prompts` on a world that lacks prompt models: one clear error naming the training command, before
the checks are fitted or any rollout runs."""

import pytest
import torch
from click.testing import CliRunner

from bridge import DEFAULT_WORLD
from test_prompts_helpers import save_micro_world

torch.set_num_threads(1)


@pytest.fixture()
def no_fitting(monkeypatch):
    """Fail a test whose command goes on to fit the pixel checks: the refusal must come first."""
    from bridge.prompts import checks

    monkeypatch.setattr(checks, "default_checker", lambda **kw: pytest.fail("fitted the checks before refusing"))


def _eval_prompts(*args: str):
    from bridge.prompts.cli import eval_prompts

    return CliRunner().invoke(eval_prompts, [*args, "--quiet"])


def test_a_world_with_no_prompt_models_names_both_training_commands(tmp_path, no_fitting):
    world = save_micro_world(tmp_path / "plain")
    r = _eval_prompts("--checkpoint", str(world))
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    for says in ("text prompts", "sketch prompts", "world events", f"worldbridge train prompts events --world {world}",
                 "worldbridge train prompts first-frame --world"):
        assert says in r.output, (says, r.output)


def test_a_section_asked_for_with_only_that_the_world_lacks_is_refused(tmp_path, no_fitting):
    world = tmp_path / "events_only"  # the shipped world without its first-frame model: typed events, no text prompts
    world.mkdir()
    for name in ("config.json", "model.safetensors", "model_card.json", "events.json"):
        (world / name).symlink_to(DEFAULT_WORLD / name)
    r = _eval_prompts("--checkpoint", str(world), "--only", "text")
    assert r.exit_code == 1 and "text prompts" in r.output and "train prompts first-frame" in r.output, r.output
    assert "world events" not in r.output  # it has them, and they were not asked for


def test_missing_sections_are_named_with_their_command():
    from bridge.model.world import load_world
    from bridge.prompts.evaluate import untrained

    w = load_world(DEFAULT_WORLD)
    assert untrained(w, ("checks", "text", "sketch", "events"), "W") == {}
    w.prompts.first = None  # as a world trained for events only
    missing = untrained(w, ("checks", "text", "sketch", "events"), "W")
    assert set(missing) == {"text", "sketch"} and "--world W" in missing["text"]


def test_help_says_what_each_figure_measures_which_way_is_better_and_its_target():
    from bridge.prompts.cli import eval_prompts

    out = CliRunner().invoke(eval_prompts, ["--help"]).output
    for says in ("prompt_attribute_accuracy (0-1, target 0.90)", "event_success (0-1, target 0.90)",
                 "event_success_paraphrase (0-1, target 0.70)", "false_event_rate (0-1, lower is better, target 0.02",
                 "sketch_psnr (dB", "sandbox game"):
        assert says in out, (says, out)
