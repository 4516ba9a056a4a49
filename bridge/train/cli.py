"""`worldbridge train tokenizer|dynamics|decoder`: the two training stages (also under `torchrun`), and the decoder
fine-tune of a finished world."""

from __future__ import annotations

import os
import shutil
import sys

import click

from bridge.model.presets import PRESETS
from bridge.options import (CHECKPOINT_FOLDER, DATASET_FOLDER, DEVICE_OPTION, NOT_NEGATIVE, OUT_FOLDER, POSITIVE,
                            TRAIN_SEED_OPTION)
from bridge.prompts.cli import train_prompts
from bridge.values import shell_quote
from bridge.train.options import (DECODER_DEFAULTS, RUN_DEFAULTS, RUN_MINUTES_OPTION, as_given, guarded, saved,
                                  typed_command, why_stopped, with_options)

# --amp of every stage that trains under autocast (tokenizer, dynamics, decoder); kept by a resume like the rest
AMP_OPTION = click.option("--amp/--no-amp", default=None,
                          help="bf16 autocast [default: on for CUDA and AVX-512-BF16 CPUs; a resumed run keeps its own].")

_common = [
    click.option("--data", required=True, type=DATASET_FOLDER, help="Dataset folder (worldbridge data ...)."),
    click.option("--out", required=True, type=OUT_FOLDER,
                 help="Run directory: the checkpoint lives here, and a run resumes from it."),
    click.option("--preset", type=click.Choice(list(PRESETS)), default=None,
                 help="Model size [default: tiny, for dynamics its tokenizer's (or --init-from world's); a resumed run keeps its own]."),
    click.option("--steps", type=click.IntRange(min=1), default=None, help="Total optimizer steps [default: the preset's; a resumed run keeps its own]."),
    click.option("--batch", type=click.IntRange(min=1), default=None, help="Clips per process per step [default: the preset's; a resumed run keeps its own]."),
    click.option("--lr", type=POSITIVE, default=None, help="Peak learning rate [default: the preset's; a resumed run keeps its own]."),
    TRAIN_SEED_OPTION,
    DEVICE_OPTION,
    AMP_OPTION,
    click.option("--ckpt-every", type=click.IntRange(min=1), default=None,
                 help=f"Checkpoint every N steps [default: {RUN_DEFAULTS['ckpt_every']}; a resumed run keeps its own]."),
    click.option("--ckpt-minutes", type=POSITIVE, default=None,
                 help=f"... and every M minutes [default: {RUN_DEFAULTS['ckpt_minutes']:g}; a resumed run keeps its own]."),
    click.option("--max-minutes", type=NOT_NEGATIVE, default=None,
                 help="Training-time budget of the run in minutes (resumes count): the learning rate decays to fit it and "
                      "the run stops with a checkpoint when it is spent; 0: no limit, to lift a kept one [default: none; "
                      "a resumed run keeps its own]."),
    click.option("--quiet", is_flag=True, help="No progress bar."),
]


common = with_options(_common)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def train() -> None:
    """Train the video tokenizer, the latent action model + dynamics, a sharper decoder, and prompts (docs/model.md)."""


@train.command()
@common
def tokenizer(**kw) -> None:
    """Stage 1: the ST-ViViT VQ-VAE video tokenizer."""
    _run("tokenizer", None, kw)


@train.command()
@click.option("--tokenizer", "tokenizer_dir", type=CHECKPOINT_FOLDER, default=None,
              help="Run directory of `worldbridge train tokenizer` (copied into --out; not needed to resume).")
@click.option("--init-from", "init_from", type=CHECKPOINT_FOLDER, default=None,
              help="Warm start: a world checkpoint whose dynamics, event slot and latent actions (and tokenizer, when "
                   "--tokenizer is not given) this run starts from; a preset with another LAM design learns it afresh.")
@click.option("--fresh-lam", is_flag=True, help="With --init-from: learn the latent action model afresh anyway.")
@common
def dynamics(tokenizer_dir: str | None, init_from: str | None, fresh_lam: bool, **kw) -> None:
    """Stage 2: latent action model + MaskGIT dynamics on the frozen tokenizer; --out becomes a loadable world."""
    if fresh_lam and not init_from:
        raise click.UsageError("--fresh-lam goes with --init-from (a fresh run learns its latent actions anyway)")
    _run("dynamics", tokenizer_dir, kw, init_from, fresh_lam)


@train.command()
@click.option("--world", required=True, type=CHECKPOINT_FOLDER,
              help="World checkpoint whose decoder to train (e.g. bridge/assets/default_world).")
@click.option("--data", "data", multiple=True, required=True, type=DATASET_FOLDER,
              help="Dataset folder; repeat to alternate between several.")
@click.option("--out", required=True, type=OUT_FOLDER,
              help="New directory: a complete copy of --world with the new decoder; rerun to train it further.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help=f"Optimizer steps in this run [default: {DECODER_DEFAULTS['steps']}; a resumed run keeps its own].")
@click.option("--batch", type=click.IntRange(min=1), default=None,
              help=f"Clips per step [default: {DECODER_DEFAULTS['batch']}; a resumed run keeps its own].")
@click.option("--lr", type=POSITIVE, default=None,
              help=f"Peak learning rate [default: {DECODER_DEFAULTS['lr']:g}; a resumed run keeps its own].")
@TRAIN_SEED_OPTION
@DEVICE_OPTION
@AMP_OPTION
@click.option("--ckpt-every", type=click.IntRange(min=1), default=None,
              help=f"Save (and measure val PSNR) every N steps [default: {DECODER_DEFAULTS['ckpt_every']}; a resumed "
                   "run keeps its own].")
@RUN_MINUTES_OPTION
@click.option("--adv", type=NOT_NEGATIVE, default=None,
              help="Weight of a conditional patch critic's loss beside MSE (VQGAN's adaptive weight), to push the decoder "
                   "toward sharp detail (snowflakes, sprites) instead of its blurred mean; 0: MSE only. Measured so far "
                   f"without a gain: docs/model.md [default: {DECODER_DEFAULTS['adv']:g}; a resumed run keeps its own].")
@click.option("--adv-start", type=click.IntRange(min=0), default=None,
              help="With --adv: the first N steps of this run train the discriminator alone, then the decoder feels it "
                   f"too [default: {DECODER_DEFAULTS['adv_start']}; a resumed run keeps its own].")
@click.option("--detail", type=NOT_NEGATIVE, default=None,
              help="Weight MSE up on detail pixels (1 + D x |pixel - its 3x3 mean|): one-pixel snowflakes, raindrops and "
                   "sprite edges count more than flat sky, so the decoder draws what its tokens make likely instead of a "
                   f"smear; 0: plain MSE (docs/model.md) [default: {DECODER_DEFAULTS['detail']:g}; a resumed run keeps its own].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def decoder(**kw) -> None:
    """Train the tokenizer's decoder further on frozen tokens: sharper frames, and the dynamics, events and
    first-frame model stay valid (docs/model.md)."""
    from bridge.train.decoder import DecoderTrainOptions, train_decoder

    quiet, given = kw.pop("quiet"), as_given(click.get_current_context())
    opts = DecoderTrainOptions(**{**{k: given[k] for k in kw}, "data": list(kw["data"])}, progress=not quiet,
                               command=typed_command())
    r = guarded(train_decoder, opts, kw["out"])
    click.echo(f"decoder: step {r['step']} saved to {r['out']}; val PSNR {r['val_psnr_before']:.2f} -> "
               f"{r['val_psnr_after']:.2f} dB; weather particles (share of val pixels, real "
               f"{r['val_particles_after']['real']:.4%}) drawn {r['val_particles_before']['reconstructed']:.4%} -> "
               f"{r['val_particles_after']['reconstructed']:.4%} ({r['seconds']} s){why_stopped(r)}")


def _command_line(ctx: click.Context, stage: str) -> str:
    """The command for the model card, every option given spelled out (the run's settings are in its card)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    program = shell_quote(shutil.which("worldbridge") or sys.argv[0])  # the path: `$(which ...)` needs a POSIX shell
    parts = [f"torchrun --nproc_per_node {world} {program}" if world > 1 else "worldbridge", "train", stage]
    given = as_given(ctx)
    for p in ctx.command.params:
        v = given.get(p.name)
        if v is None or not isinstance(p, click.Option):
            continue
        if p.is_flag:
            if p.secondary_opts:
                parts.append(p.opts[0] if v else p.secondary_opts[0])
            elif v:
                parts.append(p.opts[0])
        else:
            parts += [p.opts[0], shell_quote(str(v))]
    return " ".join(parts)


def _run(stage: str, tokenizer_dir: str | None, kw: dict, init_from: str | None = None, fresh_lam: bool = False) -> None:
    from bridge.train.trainer import TrainOptions, train as run

    ctx = click.get_current_context()
    command, kw = _command_line(ctx, stage), as_given(ctx)
    opts = TrainOptions(stage=stage, data=kw["data"], out=kw["out"], preset=kw["preset"], tokenizer=tokenizer_dir,
                        init_from=init_from, fresh_lam=fresh_lam, steps=kw["steps"], batch=kw["batch"], lr=kw["lr"], seed=kw["seed"], device=kw["device"],
                        amp=kw["amp"], ckpt_every=kw["ckpt_every"], ckpt_minutes=kw["ckpt_minutes"],
                        max_minutes=kw["max_minutes"], command=command, progress=not kw["quiet"])
    result = guarded(run, opts, kw["out"])
    if int(os.environ.get("RANK", "0")) == 0 and not result.get("unchanged"):
        click.echo(saved(f"{stage}: ", result, kw["out"]))


train.add_command(train_prompts)  # `worldbridge train prompts events|first-frame` (docs/prompts.md)
