"""`worldbridge data ...`: generate, import, capture, inspect and preview video datasets."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import click

from bridge.data.interrupt import nothing_written, stopped_says
from bridge.options import DATASET_FOLDER, OUT_FOLDER, seed_option


@contextmanager
def warnings_as_lines() -> Iterator[None]:
    """A warning (a truncated video, a folder left to delete) is one `warning: ...` line above the progress bar, not
    Python's `importer.py:218: FootageWarning:` and a line of its source inside the bar."""
    from tqdm import tqdm

    with warnings.catch_warnings():
        warnings.showwarning = lambda message, *_, **__: tqdm.write(f"warning: {message}", file=sys.stderr)
        yield


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def data() -> None:
    """Generate, import, capture, inspect and preview video datasets (format: docs/data.md)."""


@data.command()
@click.option("--world", default="sandbox", show_default=True, help="World to play: only 'sandbox' (the scripted game).")
@click.option("--episodes", default=100, show_default=True, type=int, help="Number of episodes (one level each).")
@click.option("--frames", default=500, show_default=True, type=int, help="Frames per episode, including the first.")
@click.option("--size", default=64, show_default=True, type=int, help="Frame height and width in pixels (a multiple of 64).")
@click.option("--out", required=True, type=OUT_FOLDER, help="Output dataset folder.")
@seed_option("the dataset: every level's seed derives from it")
@click.option("--workers", default=2, show_default=True, type=int, help="Worker processes.")
@click.option("--sketch", is_flag=True, help="Also store the flat-colour sketch view of every frame.")
@click.option("--events-per-episode", default=1.0, show_default=True, type=click.FloatRange(min=0),
              help="An episode with events gets max(1, Poisson(this)) of them (mean 1.37 at 1.0, 2.58 at 2.5).")
@click.option("--event-fraction", default=0.5, show_default=True, type=click.FloatRange(0, 1), help="Share of episodes with events.")
@click.option("--val-fraction", default=0.05, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Share of levels (by seed) held out for validation.")
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset at --out.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def generate(world, episodes, frames, size, out, seed, workers, sketch, events_per_episode, event_fraction, val_fraction,
             overwrite, quiet) -> None:
    """Play the sandbox game with scripted players and save the frames, true and effective actions."""
    from bridge.data.generate import GenerateConfig, generate as run
    from bridge.values import plural

    try:
        cfg = GenerateConfig(world=world, episodes=episodes, frames=frames, size=size, seed=seed, workers=workers,
                             sketch=sketch, events_per_episode=events_per_episode, event_fraction=event_fraction,
                             val_fraction=val_fraction)
        with warnings_as_lines(), stopped_says(nothing_written(out)):
            summary = run(cfg, out, overwrite=overwrite, progress=not quiet)
    except (ValueError, OSError) as e:  # OSError: an --out that cannot be written (read-only, full disk)
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {plural(summary['frames'], 'frame')} in {plural(summary['episodes'], 'episode')} "
               f"to {summary['out']} in {summary['seconds']} s: {summary['frames_per_s']:.0f} frames/s, "
               f"{summary['bytes'] / 2**20:.1f} MiB")


@data.command()
@click.argument("root", type=DATASET_FOLDER)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info(root, as_json) -> None:
    """Summarise a dataset: episodes, frames, resolution, fps, size on disk, splits, captions, events, its fingerprint
    and how it was made (generated_by, or imported_from: its first 5 sources; --json lists all)."""
    from bridge.data.dataset import VideoDataset
    from bridge.data.summary import dataset_info, format_info

    try:
        summary = dataset_info(VideoDataset(root))
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps(summary, indent=1) if as_json else format_info(summary))


@data.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--out", required=True, type=OUT_FOLDER, help="Output dataset folder.")
@click.option("--size", default=64, show_default=True, type=int, help="Frame size: center-crop to square, then resize.")
@click.option("--fps", default=10.0, show_default=True, type=float, help="Resample every video to this frame rate.")
@click.option("--val-fraction", default=0.05, show_default=True, type=click.FloatRange(0, 1), help="Share of sources held out for validation.")
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset at --out.")
def import_(paths, out, size, fps, val_fraction, overwrite) -> None:
    """Import videos (mp4/webm/mkv/mov/avi/m4v/mpg/mpeg), GIFs, folders of images and host recordings (.wbrec) as video-only
    footage."""
    from bridge.data.importer import import_footage
    from bridge.values import plural

    try:
        with warnings_as_lines(), stopped_says(nothing_written(out)):
            summary = import_footage(paths, out, size=size, fps=fps, val_fraction=val_fraction, overwrite=overwrite)
    except (ValueError, OSError) as e:  # OSError: an --out that cannot be written (read-only, full disk)
        raise click.ClickException(f"{e} (nothing was written)") from None
    click.echo(f"imported {plural(summary['frames'], 'frame')} in {plural(summary['episodes'], 'episode')} "
               f"to {summary['out']}")


@data.command()
@click.option("--env", "env_id", required=True,
              help="Gymnasium id, e.g. CartPole-v1, or WorldBridge/Sandbox-v0 (the sandbox game, a test backend); it "
                   "must render rgb_array.")
@click.option("--episodes", default=10, show_default=True, type=int, help="Episodes to play.")
@click.option("--out", required=True, type=OUT_FOLDER, help="Output dataset folder.")
@click.option("--frames", default=500, show_default=True, type=int, help="Most frames per episode (episodes may end sooner).")
@click.option("--size", default=64, show_default=True, type=int, help="Frame size: center-crop to square, then resize.")
@seed_option("the environment and the random policy")
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset at --out.")
def capture(env_id, episodes, out, frames, size, seed, overwrite) -> None:
    """Record a Gymnasium environment under a random action-repeat policy, with its true actions."""
    from bridge.data.capture import capture as run
    from bridge.values import plural

    try:
        with warnings_as_lines(), stopped_says(nothing_written(out)):
            summary = run(env_id, out, episodes=episodes, frames=frames, size=size, seed=seed, overwrite=overwrite)
    except (ValueError, OSError) as e:  # OSError: an --out that cannot be written (read-only, full disk)
        raise click.ClickException(str(e)) from None
    acts = "with actions " + str(summary["actions"]) if summary["actions"] else "without actions (not a discrete space)"
    early = (f" ({summary['ended_early']} ended before {plural(frames, 'frame')}, when the environment ended them; "
             f"the shortest has {summary['shortest']}: --frames is the most per episode)"
             if summary["ended_early"] else "")
    click.echo(f"captured {plural(summary['frames'], 'frame')} in {plural(summary['episodes'], 'episode')} "
               f"of {env_id}{early} "
               f"to {summary['out']} {acts}")


@data.command()
@click.argument("root", required=False, type=DATASET_FOLDER)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write (ends in .png).")
@click.option("--rows", default=8, show_default=True, type=click.IntRange(min=1), help="Episodes to show.")
@click.option("--cols", default=8, show_default=True, type=click.IntRange(min=1), help="Frames per episode.")
@click.option("--scale", default=2, show_default=True, type=click.IntRange(min=1), help="Pixel scale factor.")
@click.option("--sandbox-gallery", is_flag=True, help="Instead of a dataset: every sandbox theme x time x weather, and every event.")
@click.option("--size", default=64, show_default=True, type=int, help="Frame size for --sandbox-gallery.")
def preview(root, out, rows, cols, scale, sandbox_gallery, size) -> None:
    """Write a contact-sheet PNG of a dataset (or the sandbox gallery)."""
    from bridge.data.dataset import VideoDataset
    from bridge.data.preview import contact_sheet, sandbox_gallery as gallery, save_png

    if not out.lower().endswith(".png"):  # the sheet is always a PNG: a .jpg name would hold PNG bytes
        raise click.ClickException(f"--out {out} is not a .png file: give a name ending in .png")
    try:
        if sandbox_gallery:
            image = gallery(size=size, scale=scale)
        elif root is None:
            raise click.UsageError("give a dataset folder, or --sandbox-gallery")
        else:
            image = contact_sheet(VideoDataset(root), rows=rows, cols=cols, scale=scale)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    try:
        path = save_png(out, image)
    except OSError as e:
        raise click.ClickException(f"cannot write --out {out} ({e.strerror or e}): give a path you can write to") from None
    click.echo(f"wrote {path} ({image.shape[1]}x{image.shape[0]})")
