"""The click types and options commands of every layer share (folders, seeds, --device, --threads, a missing
--checkpoint's way out). A leaf: it imports click, the standard library and bridge.values only, so a model or editor
module takes its options from here, never from the command registry (bridge/cli.py)."""

from __future__ import annotations

import os
from typing import Any, Callable

import click

from bridge.values import SEED_DEFAULT, SEED_MAX


class Folder(click.Path):
    """A folder option: a file given for it (a run's model.safetensors, a dataset's manifest.json) is refused with the
    fix, not click's bare "Directory '...' is a file.", and an empty one (an unset shell variable) is refused, not read
    as the current folder."""

    def __init__(self, what: str, path_type: type | None = None) -> None:  # what: the fix, "the dataset's folder, ..."
        super().__init__(file_okay=False, path_type=path_type)
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not os.fspath(value):
            self.fail(f"it is empty: give {self.what}", param, ctx)
        if os.path.isfile(value):
            self.fail(f"{os.fsdecode(value)} is a file: give {self.what}", param, ctx)
        return super().convert(value, param, ctx)


CHECKPOINT_FOLDER = Folder("the checkpoint's folder (its run directory), not a file in it")
DATASET_FOLDER = Folder("the dataset's folder (docs/data.md), not a file in it; `worldbridge data import` makes one "
                        "from videos")
OUT_TEXT = "a folder to write to (made if missing), not a file"
OUT_FOLDER = Folder(OUT_TEXT)

POSITIVE, NOT_NEGATIVE = click.FloatRange(min=0, min_open=True), click.FloatRange(min=0)  # rates, minutes; weights
# Every command's --device, worded as bridge.model.world.pick_device decides (kept here: this module does not load torch).
DEVICE_OPTION = click.option("--device", default=None, help="cpu, cuda or cuda:N [default: cuda when present, else cpu].")
THREADS = click.IntRange(0, 1024)  # every --threads: 0 is PyTorch's own default; bridge.model.speed's defaults to it
# Every command that runs a world model in this process (serve, demo, play); bridge.host.backends.set_cpu_threads.
THREADS_OPTION = click.option(
    "--threads", type=THREADS, default=None,
    help="PyTorch CPU threads the world model runs on (default 1, or OMP_NUM_THREADS when set; 0: PyTorch's own "
         "default, every core). One keeps it real-time beside a game engine or any busy core.")


def seed_option(what: str) -> Callable:
    """One --seed for every data and model command (its range and default); `what` says what it seeds there."""
    return click.option("--seed", type=click.IntRange(min=0), default=SEED_DEFAULT, show_default=True,
                        help=f"Seed of {what}.")


# --seed of every training stage: a resumed run draws on with its own unless --seed is given again (the stages pass
# None for an option left to its default: bridge.train.options.as_given; bridge.train.loop.kept_options)
TRAIN_SEED_OPTION = seed_option("the new weights and of the clips drawn [a resumed run keeps its own]")


def world_seed_option(default: int | None, more: str = "") -> Callable:
    """One --seed for every command that starts a world (play, demo, the screenshot tool): the protocol's seed range,
    which C# and GDScript clients can send and read back too; `more` says what its default is or does."""
    return click.option("--seed", type=click.IntRange(0, SEED_MAX), default=default, show_default=default is not None,
                        help=f"World seed of the session: the same seed starts the same world{more}.")


def one_backend(backend: str | None, checkpoint: Any) -> None:
    """--backend sandbox and --checkpoint each name the world a command runs: both is refused in the command line's
    words before anything loads (bridge.host.backends.resolve_backend words it for a Python caller)."""
    if backend is not None and checkpoint is not None:
        raise click.UsageError("give either --backend sandbox or --checkpoint PATH, not both")


def command_backend(backend: str | None, checkpoint: Any) -> Any:
    """The world a command runs (serve, bench, demo, play), every refusal in the command line's words; returns
    bridge.host.backends.BackendSpec, imported here lazily so this module stays a leaf."""
    from bridge.host.backends import resolve_backend

    one_backend(backend, checkpoint)
    try:
        return resolve_backend(backend, checkpoint)
    except (ValueError, OSError) as e:
        raise backend_refused(e) from None


def backend_refused(e: ValueError | OSError) -> click.UsageError:
    """bridge.host.backends.resolve_backend's refusal as a command line says it: a --checkpoint that is not there
    (FileNotFoundError, worded by checkpoint.missing_text) gets the command's other way out, the sandbox."""
    if isinstance(e, FileNotFoundError):
        return click.BadParameter(f"{e}; --backend sandbox runs the sandbox game (a test backend) instead",
                                  param_hint="'--checkpoint'")
    return click.UsageError(str(e))
