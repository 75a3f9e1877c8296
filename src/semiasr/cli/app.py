"""The root ``semiasr`` command: ``--version``, ``info``, ``config``; other groups are added below."""

from __future__ import annotations

import os
import platform
import sys
from typing import Annotated

import typer

import semiasr
from semiasr.errors import SemiasrError

app = typer.Typer(
    name="semiasr",
    help="Train speech recognisers and adapt them cheaply to new domains.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Show and check configs.", no_args_is_help=True)
app.add_typer(config_app, name="config")


_registered = False


def _register_subcommands() -> None:
    """Add the command groups of the other layers (imported lazily so `--version` stays fast)."""
    global _registered
    if _registered:
        return
    _registered = True
    from semiasr.cli import asr, data

    asr.register(app)
    data_app = data.app
    try:
        from semiasr.cli import synth

        for command in synth.app.registered_commands:
            data_app.registered_commands.append(command)
    except ImportError:  # pragma: no cover - the synth extra is part of the base install
        pass
    app.add_typer(data_app, name="data", help="Import, inspect and synthesise corpora.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"semiasr {semiasr.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """semiasr: semiring lattices, Conformer transducers and cheap domain adaptation."""


@app.command()
def info() -> None:
    """Versions, threads and devices."""
    import torch

    from semiasr.rundir import package_versions

    lines = [f"semiasr {semiasr.__version__}", f"python {platform.python_version()}"]
    lines += [f"{k} {v}" for k, v in package_versions().items() if k != "semiasr"]
    lines.append(f"torch threads {torch.get_num_threads()} (cpu count {os.cpu_count()})")
    cuda = torch.cuda.is_available()
    lines.append(f"cuda {'available' if cuda else 'not available'}")
    if cuda:
        for i in range(torch.cuda.device_count()):
            lines.append(f"  cuda:{i} {torch.cuda.get_device_name(i)}")
    lines.append(f"bf16 on cpu {'yes' if _cpu_bf16() else 'no'}")
    from semiasr.malloc import malloc_state

    lines.append(f"malloc {malloc_state()}")
    typer.echo("\n".join(lines))


def _cpu_bf16() -> bool:
    import torch

    try:
        return bool(
            torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except (AttributeError, RuntimeError):
        return False


@config_app.command("show")
def config_show(
    config: Annotated[
        str, typer.Argument(help="A shipped config name (see `config list`) or a YAML path.")
    ],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides, e.g. model.d_model=256")
    ] = None,
) -> None:
    """Print the resolved config with overrides applied."""
    from semiasr.config import load_config, to_yaml

    typer.echo(to_yaml(load_config(config, overrides or [])), nl=False)


@config_app.command("list")
def config_list() -> None:
    """The configs shipped with semiasr."""
    from semiasr.config import available_configs

    typer.echo("\n".join(available_configs()))


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one clear line and exit 2; everything else propagates."""
    _register_subcommands()
    try:
        # without standalone mode click returns a command's typer.Exit code instead of raising it
        code = app(args=argv, standalone_mode=False)
    except SemiasrError as e:
        typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
        return 2
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt as e:
        typer.echo(f"interrupted: {e}" if str(e) else "interrupted", err=True)
        return 130
    except Exception as e:
        # Usage errors of the (possibly vendored) click under typer: print the usage line, exit 2.
        if hasattr(e, "show") and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            return e.exit_code
        raise
    return code if isinstance(code, int) else 0


def _entry() -> None:  # pragma: no cover
    """The ``semiasr`` command. The process is ours, so glibc's malloc is tuned first, before
    torch is imported (:mod:`semiasr.malloc`; ``SEMIASR_MALLOC=system`` keeps its defaults)."""
    from semiasr.malloc import tune_malloc

    try:
        tune_malloc()
    except ValueError as e:
        typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
        sys.exit(2)
    sys.exit(main())
