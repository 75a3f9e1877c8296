"""``semiasr data synth``: generate the built-in two-domain synthetic speech corpus."""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app", "synth"]

app = typer.Typer(help="The built-in synthetic corpus.", no_args_is_help=True, add_completion=False)


def _cpu_seconds() -> float:
    """CPU time of this process plus its finished child processes (the synthesis workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def synth(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the corpus to.")] = Path(
        "data/synth"
    ),
    seed: Annotated[int, typer.Option("--seed", help="Seed of texts, voices and noise.")] = 0,
    scale: Annotated[
        float, typer.Option("--scale", help="Multiplies every split's size (1.0: about 3.8 h).")
    ] = 1.0,
    workers: Annotated[int, typer.Option("--workers", help="Synthesis processes.")] = 2,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a finished corpus in --out.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Synthesise speech with eSpeak NG into source/target train, unlabelled and test splits."""
    from semiasr.data.synth import synthesize_corpus

    wall, cpu = time.perf_counter(), _cpu_seconds()
    card = synthesize_corpus(
        out, seed=seed, scale=scale, workers=workers, progress=not quiet, force=force
    )
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    for name, split in card.splits.items():
        typer.echo(
            f"{name:18s} {split['hours']:7.3f} h {split['utterances']:6d} utterances "
            f"{len(split['speakers']):3d} voices"
        )
    vocab, oov = card.data["vocabulary"], card.data["oov"]
    typer.echo(
        f"vocabulary {vocab['overall']} words (source {vocab['source']}, "
        f"target {vocab['target']}); target tokens unseen in source text "
        f"{oov['target_tokens_vs_source']:.1%}"
    )
    hours = card.data["hours"]
    typer.echo(
        f"wrote {out} ({hours:.2f} h) in {wall:.1f} s wall, {cpu:.1f} s CPU "
        f"({hours * 3600 / max(cpu, 1e-9):.0f}x real time per CPU second)"
    )


@app.callback()
def _group() -> None:
    """The built-in synthetic corpus."""


app.command("synth")(synth)
