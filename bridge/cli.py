"""The `worldbridge` command: one lazily-loaded click group per part, so `--help` stays fast."""

from __future__ import annotations

import importlib

import click

# command name -> "module:attribute" of a click command or group
COMMANDS = {
    "data": ("bridge.data.cli:data", "Generate, import, capture, inspect and preview video datasets."),
    "train": ("bridge.train.cli:train", "Train the tokenizer, the latent actions + dynamics, a sharper decoder, or prompts and events."),
    "eval": ("bridge.train.evaluate:eval_command", "Evaluate a checkpoint on a dataset and print JSON."),
    "eval-prompts": ("bridge.prompts.cli:eval_prompts", "Measure prompt-to-scene and world-event accuracy with pixel checks (JSON)."),
    "health": ("bridge.model.health:health", "Check world-model rollouts for degenerate frames against real footage."),
    "serve": ("bridge.host.cli:serve", "Run the world host (ZeroMQ ROUTER) for engine plugins and the editor."),
    "bench": ("bridge.host.bench:bench", "Measure frames/s and latency in-process and through the protocol."),
    "keys": ("bridge.host.cli:keys", "Generate ZeroMQ CURVE keys for binding beyond loopback."),
    "record": ("bridge.host.cli:record", "Inspect, export or replay session recordings."),
    "play": ("editor_gui.app:play", "Open the editor window and play a world."),
    "demo": ("bridge.demo:demo", "Headless scripted session through the real protocol; writes a recording and a GIF/MP4."),
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand only when it is run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module), attr)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        """Click suggests from the commands it holds, and this group holds none until one runs: suggest from COMMANDS."""
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as e:
            raise click.exceptions.NoSuchCommand(e.command_name, possibilities=COMMANDS, ctx=ctx) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_text) for name, (_, help_text) in sorted(COMMANDS.items())])


# after the alphabetical list, the order a newcomer runs them in (README.md, top)
START_HERE = ("Start with `worldbridge demo` (a scripted session on the embedded default world, no window needed), "
              "then `worldbridge play` (the editor); `worldbridge serve` runs the host the Unity plugin and the Godot "
              "addon connect to. Every command has --help; the docs are README.md and docs/.")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=START_HERE)
@click.version_option(package_name="worldbridge")
def main() -> None:
    """WorldBridge: generated, playable worlds for Unity, Godot and a desktop editor."""


if __name__ == "__main__":
    main()
