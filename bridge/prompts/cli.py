"""`worldbridge train prompts events|first-frame` and `worldbridge eval-prompts` (docs/prompts.md)."""

from __future__ import annotations

import json
from typing import Callable

import click

from bridge.options import (CHECKPOINT_FOLDER, DATASET_FOLDER, DEVICE_OPTION, NOT_NEGATIVE, OUT_FOLDER, POSITIVE,
                            TRAIN_SEED_OPTION, one_backend)
from bridge.train.options import (PROMPT_DEFAULTS, RUN_MINUTES_OPTION, as_given, guarded, saved, typed_command,
                                  with_options)


def _options(stage: str, out: Callable, *own: Callable) -> Callable:
    """A stage's options in the order --help lists them, as the other train commands do: what it trains on, its --out,
    the run's options (their defaults the stage's own: PROMPT_DEFAULTS), the stage's own options, --quiet."""
    d = PROMPT_DEFAULTS[stage]
    return with_options([
        click.option("--world", required=True, type=CHECKPOINT_FOLDER,
                     help="World checkpoint directory (the --out of `worldbridge train dynamics`)."),
        click.option("--data", required=True, type=DATASET_FOLDER,
                     help="Sandbox dataset with captions and events (`worldbridge data generate`; add --sketch for "
                          "sketches)."),
        out,
        click.option("--steps", type=click.IntRange(min=1), default=None,
                     help="Optimizer steps this run trains, on a learning-rate schedule of its own [default: "
                          f"{d['steps']}; a rerun on the same --out without --steps trains as many more as the run it "
                          "resumes was given]."),
        click.option("--batch", type=click.IntRange(min=1), default=None,
                     help=f"{'Clips' if stage == 'events' else 'Frames'} per step [default: {d['batch']}; a resumed "
                          "run keeps its own]."),
        click.option("--lr", type=POSITIVE, default=None,
                     help=f"Peak learning rate [default: {d['lr']:g}; a resumed run keeps its own]."),
        click.option("--encoder", type=click.Choice(["minilm", "hashing"]), default="minilm", show_default=True,
                     help="Text encoder (hashing: model-free, no paraphrases; for smoke tests)."),
        click.option("--max-frames", type=click.IntRange(min=1), default=12000, show_default=True,
                     help="Frames tokenized up front."),
        TRAIN_SEED_OPTION,
        DEVICE_OPTION,
        click.option("--ckpt-every", type=click.IntRange(min=1), default=None,
                     help=f"Save every N steps [default: {d['ckpt_every']}; a resumed run keeps its own]."),
        RUN_MINUTES_OPTION,
        *own,
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ])


@click.group("prompts", context_settings={"help_option_names": ["-h", "--help"]})
def train_prompts() -> None:
    """Teach a trained world prompts: events in the dynamics, and text/sketch -> first frame."""


def _run(stage: str, **kw) -> None:
    """Train `stage` and end with the line every training command ends with, named by its stage."""
    from bridge.prompts.train import KEPT, PromptTrainOptions, train_events, train_first_frame

    quiet, given = kw.pop("quiet"), as_given(click.get_current_context())  # None: a resumed run's own, else the default
    opts = PromptTrainOptions(**{**kw, **{k: given[k] for k in KEPT}}, progress=not quiet, command=typed_command())
    result = guarded(train_events if stage == "events" else train_first_frame, opts, kw.get("out") or kw["world"])
    click.echo(saved(f"{stage}: ", result, result["out"]))


@train_prompts.command("events")
@_options(
    "events",
    click.option("--out", required=True, type=OUT_FOLDER,
                 help="New directory for the event-conditioned world (a complete checkpoint); rerun to train it "
                      "further."),
    click.option("--clip-len", type=click.IntRange(min=3), default=8, show_default=True,
                 help="Frames per training clip."),
    click.option("--hold", type=click.IntRange(min=1), default=None,
                 help="Frames the event embedding stays in the conditioning slot, the firing frame included "
                      "[default: 4; a resumed run keeps its own]."),
    click.option("--guidance", type=NOT_NEGATIVE, default=None,
                 help="Default guidance scale on events, stored for play [default: 3; a resumed run keeps its own]."),
    click.option("--event-share", type=click.FloatRange(0, 1), default=0.5, show_default=True,
                 help="Share of clips that contain an event."),
    click.option("--anchor", type=NOT_NEGATIVE, default=0.0, show_default=True,
                 help="Weight of KL(--world's dynamics || the new one) on event-free clips; > 0 keeps plain play as "
                      "it was (against flicker after long event runs)."),
)
def events(**kw) -> None:
    """Fine-tune the dynamics to take event embeddings in its conditioning slot (typed and free-text events)."""
    _run("events", **kw)


@train_prompts.command("first-frame")
@_options(
    "first-frame",
    click.option("--out", default=None, type=OUT_FOLDER,
                 help="Where first_frame.* go [default: the --world directory, so the world takes text prompts]."),
    click.option("--preset", type=click.Choice(["micro", "tiny", "small"]), default=None,
                 help="Size of the first-frame MaskGIT [default: the world's preset; a resumed run, or --init-from, "
                      "keeps its own]."),
    click.option("--init-from", type=CHECKPOINT_FOLDER, default=None,
                 help="Warm start from this world's first-frame model (same codebook size and grid), e.g. the world "
                      "before its tokenizer was trained further."),
)
def first_frame(**kw) -> None:
    """Train the text/sketch -> first frame MaskGIT on (caption, frame, sketch) triples, on the world's tokenizer."""
    _run("first-frame", **kw)


@click.command("eval-prompts", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--checkpoint", type=CHECKPOINT_FOLDER, default=None,
              help="World checkpoint directory [default: the embedded default world].")
@click.option("--backend", type=click.Choice(["sandbox"]), default=None,
              help="Score the sandbox game itself (validates the pixel checks; should be ~100%).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout (progress on stderr).")
@click.option("--trials", type=click.IntRange(min=1), default=6, show_default=True, help="Rollouts per event type.")
@click.option("--prompts", type=click.IntRange(min=1), default=60, show_default=True, help="Text prompts (theme x time x weather).")
@click.option("--sketches", type=click.IntRange(min=1), default=12, show_default=True, help="Sketch prompts.")
@click.option("--event-guidance", type=float, default=None, help="Guidance scale on events [default: the checkpoint's].")
@click.option("--only", type=click.Choice(["checks", "text", "sketch", "events"]), multiple=True,
              help="Measure only these sections (repeatable) [default: all].")
@click.option("--calibrate", is_flag=True,
              help="Also score with checks fitted on this model's own tokenizer reconstructions (tokenizer_calibrated).")
@DEVICE_OPTION
@click.option("--quiet", is_flag=True, help="No progress bar.")
def eval_prompts(checkpoint, backend, as_json, trials, prompts, sketches, event_guidance, only, calibrate, device,
                 quiet) -> None:
    """Measure prompt-to-scene accuracy, sketch fidelity and event success on held-out sandbox levels.

    \b
    Better higher unless said; the targets the default world is held to (docs/prompts.md, Measured):
      prompt_attribute_accuracy (0-1, target 0.90): text prompt -> first frame, theme/time/weather read by pixel checks
      event_success (0-1, target 0.90), event_success_paraphrase (0-1, target 0.70): an event's change shows in 24 frames
      false_event_rate (0-1, lower is better, target 0.02 or less): the change shows with no event fired
      sketch_psnr (dB): the frame drawn from a sketch against the real view of that sketch
    --backend sandbox scores the sandbox game (our data source, not a world model): it validates the checks.
    """
    from bridge.model.checkpoint import CheckpointError
    from bridge.prompts.checks import default_checker
    from bridge.prompts.evaluate import PROMPT_SECTIONS, EvalOptions, evaluate, untrained

    one_backend(backend, checkpoint)
    if backend == "sandbox" and (event_guidance is not None or calibrate):
        raise click.UsageError("--event-guidance and --calibrate apply to a world model: the sandbox game has no "
                               "guidance and no tokenizer, so drop them with --backend sandbox")
    try:
        if backend == "sandbox":
            from bridge.worlds.sandbox import SandboxWorld

            world = SandboxWorld(size=64)
        else:
            from bridge.model.world import load_world

            world = load_world(checkpoint, device=device)
        sections = tuple(only) or ("checks", *PROMPT_SECTIONS)
        missing = untrained(world, sections, checkpoint or "WORLD")
        if missing and (only or len(missing) == len(PROMPT_SECTIONS)):  # an --only section untrained, or none trained
            raise click.ClickException(f"{world.name} cannot be measured on " + "; ".join(missing.values()))
        for why in missing.values():
            click.echo(f"not measured: {why}", err=True)
        opts = EvalOptions(prompts=prompts, sketches=sketches, trials=trials, event_guidance=event_guidance)
        checker = default_checker(progress=not quiet)
        result = evaluate(world, checker, opts, progress=not quiet, sections=sections, calibrate=calibrate)
    except (ValueError, FileNotFoundError, CheckpointError) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(result, indent=1, sort_keys=False))
        return
    click.echo(f"backend: {result['backend']['name']} ({result['backend']['kind']})")
    for key in ("prompt_attribute_accuracy", "prompt_attribute_accuracy_paraphrase", "event_success",
                "event_success_paraphrase", "false_event_rate"):
        if key in result and result[key] is not None:
            click.echo(f"  {key:40s} {result[key]:.3f}")
    if "sketch" in result and result["sketch"].get("sketch_supported"):
        s = result["sketch"]
        click.echo(f"  {'sketch_psnr (own / other layout)':40s} {s['sketch_psnr']:.2f} / {s['sketch_psnr_other_layout']:.2f} dB")
    click.echo("(use --json for every breakdown)")
