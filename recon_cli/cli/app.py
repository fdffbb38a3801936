"""The `recon` Typer application: one module per command, each thin.

Command modules import heavy library code (torch, trimesh) inside their
command functions so that `recon --help` and `recon --version` stay fast.
"""

from __future__ import annotations

import importlib
import typer

from recon_cli import __version__

def _usage_pieces(self: typer.core.TyperArgument, ctx: object) -> list[str]:
    """Arguments on usage lines the usual way: ROOT, [INPUTS]..., PATHS... (not {root} or {PATHS...}...)."""
    name = (self.metavar or self.name or "ARG").upper().rstrip(".")
    if self.nargs != 1:
        name += "..."
    return [name if self.required else f"[{name}]"]


typer.core.TyperArgument.get_usage_pieces = _usage_pieces  # click's public hook, overridden by Typer

app = typer.Typer(
    name="recon",
    help="Photos to 3D meshes with D-OccNet. Run `recon COMMAND --help` for details.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain usage errors: one "Error: ..." line, not a wrapped box
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: Command modules; each defines ``register(app: typer.Typer) -> None``.
COMMAND_MODULES: tuple[str, ...] = (
    "recon_cli.cli.data",
    "recon_cli.cli.synth",
    "recon_cli.cli.features",
    "recon_cli.cli.merge",
    "recon_cli.cli.data_import",
    "recon_cli.cli.reconstruct",
    "recon_cli.cli.train",
    "recon_cli.cli.tune",
    "recon_cli.cli.eval",
    "recon_cli.cli.convert",
    "recon_cli.cli.onnx",
    "recon_cli.cli.render",
    "recon_cli.cli.serve",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"recon {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Photos to 3D meshes with D-OccNet."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Console-script entry point."""
    app()
