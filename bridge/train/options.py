"""What every training command line shares: the defaults of what a resume keeps, option lists applied as one
decorator, the per-run --max-minutes of the fine-tuning stages, the exact command for the model card, a clean error
for a known failure, and the one-line result (the options every command shares: bridge/options.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

import click
from click.core import ParameterSource

from bridge.options import NOT_NEGATIVE
from bridge.values import SEED_DEFAULT, shell_quote

# The defaults of the options a run keeps on a resume (trainer.KEPT; decoder.KEPT) when neither given nor the run's own:
# train/cli.py's options default to None (as_given) and their --help shows these; the rest of trainer.KEPT's defaults
# are the preset's (presets.TRAIN_DEFAULTS)
RUN_DEFAULTS = {"max_minutes": None, "seed": SEED_DEFAULT, "amp": None, "ckpt_every": 500, "ckpt_minutes": 10.0,
                "log_every": 10, "warmup": 200, "lam_lr_scale": 0.5}
DECODER_DEFAULTS = {"steps": 2000, "batch": 16, "lr": 2e-4, "seed": SEED_DEFAULT, "amp": None, "ckpt_every": 200,
                    "max_minutes": None, "adv": 0.0, "adv_start": 0, "detail": 0.0}
# ... and of the prompt stages' (prompts.train.KEPT), each stage its own
PROMPT_DEFAULTS = {stage: {"steps": 300, "batch": batch, "lr": lr, "seed": SEED_DEFAULT, "ckpt_every": 100,
                           "max_minutes": None}
                   for stage, batch, lr in (("events", 16, 1e-4), ("first-frame", 64, 5e-4))}

# --max-minutes of the stages that fine-tune a finished world (decoder, prompts): a budget per run, kept by a rerun
RUN_MINUTES_OPTION = click.option(
    "--max-minutes", type=NOT_NEGATIVE, default=None,
    help="Stop (and save) after this many minutes of this run; the learning rate decays to fit; 0: no limit, to lift "
         "a kept one [default: none; a resumed run keeps its own].")


def with_options(options: list[Callable]) -> Callable:
    """One decorator for a list of click options, applied in the order they are listed (as --help shows them)."""
    def apply(f: Callable) -> Callable:
        for opt in reversed(options):
            f = opt(f)
        return f
    return apply


def as_given(ctx: click.Context) -> dict[str, Any]:
    """The options as given, None where left to their default: a resumed run keeps its own (trainer.KEPT,
    decoder.KEPT, prompts.train.KEPT)."""
    return {k: None if ctx.get_parameter_source(k) is ParameterSource.DEFAULT else v for k, v in ctx.params.items()}


def typed_command() -> str:
    """The command as typed, for a model card (the prompt stages and the decoder; the tokenizer and dynamics stages
    spell out the options given instead, train/cli.py's _command_line)."""
    return "worldbridge " + " ".join(shell_quote(a) for a in sys.argv[1:])


def guarded(fn: Callable[[Any], dict], opts: Any, out: str | None) -> dict:
    """Run a training function: a known failure becomes a clean CLI error, Ctrl-C says how to resume."""
    from bridge.model.checkpoint import CheckpointError

    started = time.time()
    try:
        return fn(opts)
    except (ValueError, RuntimeError, OSError, CheckpointError) as e:
        if isinstance(e, OSError) and e.filename is not None:  # the system's words, and what to do about them
            mine = out is not None and str(e.filename).startswith(str(out))
            hint = "choose an --out you can write to" if mine else "check that path"
            raise click.ClickException(f"{e.filename}: {e.strerror or e}; {hint}") from None
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        files = [f for f in Path(out).iterdir() if f.is_file()] if out and Path(out).is_dir() else []
        if any(f.stat().st_mtime >= started for f in files):
            click.echo(f"stopped; the last state was saved: run the same command to resume from {out}", err=True)
        elif files:  # stopped while setting up, over an earlier run's state (or a world a prompt stage adds to)
            click.echo(f"stopped before this run saved anything: {out} keeps what was there before", err=True)
        else:
            click.echo(f"stopped before anything was saved{f' to {out}' if out else ''}", err=True)
        sys.exit(130)


def saved(what: str, result: dict, out: str) -> str:
    """`<what>: step N saved to OUT {float metrics}`, the line every training command ends with, and why it stopped
    short of --steps when the --max-minutes budget did (loop.budget_stop)."""
    shown = {k: round(v, 4) for k, v in result.items() if isinstance(v, float)}
    return f"{what}step {result['step']} saved to {out} {shown}{why_stopped(result)}"


def why_stopped(result: dict) -> str:
    """`; stopped by --max-minutes M at step N of S: how to go on` where the budget, not --steps, ended a run (every
    training command's last line ends with it); else nothing."""
    return f"; {result['stopped']}" if "stopped" in result else ""
