"""``semiasr train | eval | decode | transcribe | demo``: thin wrappers over :mod:`semiasr.tasks`."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

Overrides = Annotated[list[str] | None, typer.Argument(help="key=value config overrides")]
Config = Annotated[str, typer.Argument(help="A shipped config name or a YAML path.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an existing run.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Delete an existing run first.")]
LmWeight = Annotated[
    float,
    typer.Option(
        help="Beam search: weight of an n-gram LM of the run's training transcripts (0: no LM)."
    ),
]
BeamWidth = Annotated[int, typer.Option(min=1, help="Beam width for beam search (1 or more).")]
TokenBonus = Annotated[float, typer.Option(help="Beam search with an LM: score added per token.")]
LmOrder = Annotated[int, typer.Option(help="Order of the n-gram LM.")]
LmPath = Annotated[
    Path | None, typer.Option("--lm", help="A saved n-gram LM (JSON) instead of the run's.")
]
Device = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto (cuda where there is one).")]


def _mode(resume: bool, overwrite: bool) -> str:
    if resume and overwrite:
        raise typer.BadParameter("--resume and --overwrite exclude each other")
    return "resume" if resume else "overwrite" if overwrite else "new"


def _fit(task, config: str, overrides: list[str] | None, resume: bool, overwrite: bool):
    """Run a training task (``train``, ``pretrain``) on a loaded config; an interrupted run exits
    130 after saying how to continue it."""
    from semiasr.config import load_config

    cfg = load_config(config, overrides or [])
    run, summary = task(cfg, mode=_mode(resume, overwrite))
    if summary.interrupted:
        typer.echo(
            f"interrupted at step {summary.steps}; checkpoint saved. Continue with --resume: {run.path}"
        )
        raise typer.Exit(130)
    return run, summary


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        config: Config,
        overrides: Overrides = None,
        resume: Resume = False,
        overwrite: Overwrite = False,
    ) -> None:
        """Train a recogniser; writes runs/<name>/ (config, metrics, log, checkpoints)."""
        from semiasr.tasks import train

        run, summary = _fit(train, config, overrides, resume, overwrite)
        typer.echo(f"trained {summary.steps} steps in {summary.wall_time_s:.0f} s; run: {run.path}")

    @app.command("pretrain")
    def pretrain_cmd(
        config: Config,
        overrides: Overrides = None,
        resume: Resume = False,
        overwrite: Overwrite = False,
    ) -> None:
        """Pretrain the config's encoder with BEST-RQ on audio alone (ssl.splits, default
        data.train); then `semiasr train ... model.init_encoder=runs/<name>`."""
        from semiasr.tasks import pretrain

        run, summary = _fit(pretrain, config, overrides, resume, overwrite)
        typer.echo(
            f"pretrained {summary.steps} steps in {summary.wall_time_s:.0f} s; run: {run.path}; "
            f"next: semiasr train {config} model.init_encoder={run.path} (with the same model.* "
            "settings)"
        )

    @app.command("eval")
    def eval_cmd(
        run: Annotated[Path, typer.Argument(help="A run directory (runs/<name>).")],
        splits: Annotated[
            list[str] | None, typer.Argument(help="Splits to score (default: data.test).")
        ] = None,
        checkpoint: Annotated[str, typer.Option(help="best, averaged, last, or a file.")] = "best",
        method: Annotated[str, typer.Option(help="greedy or beam.")] = "greedy",
        beam: BeamWidth = 4,
        out: Annotated[
            Path | None,
            typer.Option(
                help="Output folder: <out>/<split>/ (default <run>/eval/<split>/, <split>-beam/ for beam search)."
            ),
        ] = None,
        lm_weight: LmWeight = 0.0,
        token_bonus: TokenBonus = 0.0,
        lm_order: LmOrder = 6,
        lm: LmPath = None,
        device: Device = "cpu",
    ) -> None:
        """Decode and score splits: report.md, report.json and wer.png per split."""
        from semiasr.config import load_config
        from semiasr.tasks import evaluate_run

        names = splits or list(load_config(run / "config.yaml").data.test)
        command = "semiasr " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        reports = evaluate_run(
            run,
            names,
            checkpoint,
            method,
            beam,
            out,
            command,
            lm_weight=lm_weight,
            token_bonus=token_bonus,
            lm_order=lm_order,
            lm_path=lm,
            device=device,
        )
        for split, rep in reports.items():
            typer.echo(
                f"{split}: WER {rep.wer:.2f}%  CER {rep.cer:.2f}%  ({rep.num_utterances} utterances)"
            )

    @app.command("decode")
    def decode_cmd(
        run: Annotated[Path, typer.Argument(help="A run directory.")],
        split: Annotated[
            str,
            typer.Argument(
                help="A split of the run's corpus (e.g. target_test) or a manifest file (.jsonl)."
            ),
        ],
        out: Annotated[Path, typer.Option(help="JSONL output.")] = Path("hyps.jsonl"),
        checkpoint: Annotated[str, typer.Option()] = "best",
        method: Annotated[str, typer.Option()] = "greedy",
        beam: BeamWidth = 4,
        lm_weight: LmWeight = 0.0,
        token_bonus: TokenBonus = 0.0,
        lm_order: LmOrder = 6,
        lm: LmPath = None,
        device: Device = "cpu",
    ) -> None:
        """Decode a manifest split to JSONL (id, ref, hyp) with timing and real-time factor."""
        from semiasr.rundir import atomic_write_text
        from semiasr.tasks import decode_split, load_trained
        from semiasr.tasks.evaluate import check_lm_options, with_lm

        check_lm_options(method, lm_weight, token_bonus, lm)
        decoder = with_lm(
            load_trained(run, checkpoint, device=device), lm_weight, token_bonus, lm_order, lm
        )
        utts, timing = decode_split(decoder, split, method=method, beam=beam)
        lines = [
            json.dumps({"id": u.id, "ref": u.ref, "hyp": u.hyp, "domain": u.domain}) for u in utts
        ]
        atomic_write_text(out, "".join(line + "\n" for line in lines))
        typer.echo(f"{len(utts)} utterances → {out}; RTF {timing['rtf']:.4f}")

    @app.command("pseudo-label")
    def pseudo_label_cmd(
        runs: Annotated[
            list[Path], typer.Argument(help="One or more run directories (their votes decide).")
        ],
        split: Annotated[
            str,
            typer.Option(help="A split of the first run's corpus, or a manifest file (.jsonl)."),
        ],
        out: Annotated[Path, typer.Option(help="The manifest to write (semiasr JSONL).")],
        checkpoint: Annotated[str, typer.Option()] = "averaged",
        method: Annotated[str, typer.Option()] = "greedy",
        beam: BeamWidth = 4,
        min_agreement: Annotated[
            float,
            typer.Option(help="Leave out utterances fewer than this share of the runs agree on."),
        ] = 0.0,
        neighbours: Annotated[
            int,
            typer.Option(
                help="Relabel each utterance by the vote of its K nearest (DTW of features) of "
                "the same speaker (no speaker id: one group); for repeated words (digits, "
                "commands); --min-agreement then reads that vote's share. 0: off."
            ),
        ] = 0,
        device: Device = "cpu",
        candidates: Annotated[
            str | None,
            typer.Option(
                help="Closed-set labels instead of decoding: score each utterance against "
                "'train' (the distinct transcripts of the first run's training splits) or a "
                "text file of one transcript per line; --neighbours then averages posteriors."
            ),
        ] = None,
        balance: Annotated[
            bool,
            typer.Option(
                help="With --candidates: rescale each speaker's posteriors so that the "
                "candidates' shares match their training frequencies (Sinkhorn)."
            ),
        ] = False,
    ) -> None:
        """Transcribe a split with trained models (majority vote over several) and write the
        hypotheses as a training manifest: data.train=[train,OUT] trains on them."""
        from semiasr.tasks.pseudo import pseudo_label

        summary = pseudo_label(
            runs,
            split,
            out,
            checkpoint=checkpoint,
            method=method,
            beam=beam,
            min_agreement=min_agreement,
            neighbours=neighbours,
            device=device,
            candidates=candidates,
            balance=balance,
        )
        typer.echo(json.dumps(summary.to_dict()))

    @app.command("transcribe")
    def transcribe_cmd(
        run: Annotated[Path, typer.Argument(help="A run directory.")],
        files: Annotated[list[Path], typer.Argument(help="Audio files.")],
        checkpoint: Annotated[str, typer.Option()] = "best",
        method: Annotated[str, typer.Option()] = "greedy",
        beam: BeamWidth = 4,
        lm_weight: LmWeight = 0.0,
        token_bonus: TokenBonus = 0.0,
        lm_order: LmOrder = 6,
        lm: LmPath = None,
        device: Device = "cpu",
        domain: Annotated[
            str | None,
            typer.Option(help="The files' domain (name or id): needed by runs adapted with mda."),
        ] = None,
    ) -> None:
        """Transcribe audio files; prints one JSON line per file (text, seconds, real-time factor)."""
        from semiasr.tasks.transcribe import transcribe_files

        fusion = {"lm_weight": lm_weight, "token_bonus": token_bonus, "lm_order": lm_order}
        recs = transcribe_files(
            run, files, checkpoint, method, beam, lm_path=lm, device=device, domain=domain,
            **fusion,
        )  # fmt: skip
        for rec in recs:
            typer.echo(json.dumps(rec))

    @app.command("adapt")
    def adapt_cmd(
        run: Annotated[Path, typer.Argument(help="The trained run to adapt (runs/<name>).")],
        overrides: Overrides = None,
        method: Annotated[
            str, typer.Option(help="full, decoder, adapters, lora, mda, hff or hff+adapters.")
        ] = "adapters",
        name: Annotated[str | None, typer.Option(help="Run name (default <run>-<method>).")] = None,
        checkpoint: Annotated[
            str,
            typer.Option(
                help="Base checkpoint: averaged (the average of the last ones, else the last), "
                "last, best or a file."
            ),
        ] = "averaged",
        resume: Annotated[bool, typer.Option("--resume")] = False,
        overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
    ) -> None:
        """Adapt a trained model to the target domain (by default: 300 updates on target_train at a
        constant 1e-3); writes a run with full checkpoints and adaptation.pt (the trained parts
        only), then scores data.test."""
        from semiasr.tasks import evaluate_run
        from semiasr.tasks.adapt import adapt, adaptation_config

        run_name = name or f"{run.name}-{method.replace('+', '-')}"
        cfg = adaptation_config(run, method, run_name, overrides or [])
        out, summary = adapt(cfg, mode=_mode(resume, overwrite), which=checkpoint)
        if summary.interrupted:
            typer.echo(
                f"interrupted at step {summary.steps}; checkpoint saved. Continue with --resume: {out.path}"
            )
            raise typer.Exit(130)
        typer.echo(f"adapted {summary.steps} steps in {summary.wall_time_s:.0f} s; run: {out.path}")
        for split, rep in evaluate_run(out.path, list(cfg.data.test), which="last").items():
            typer.echo(f"{split}: WER {rep.wer:.2f}%  CER {rep.cer:.2f}%")

    @app.command("demo")
    def demo_cmd(
        overrides: Overrides = None,
        quick: Annotated[
            bool, typer.Option("--quick", help="Small corpus and model: about 3 minutes.")
        ] = False,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Retrain from scratch.")
        ] = False,
    ) -> None:
        """The built-in demo: make the corpus, train on the source domain, evaluate on source and target,
        write runs/demo/report.md. Re-running resumes (and finishes at once if training is done)."""
        from semiasr.tasks.demo import run_demo

        report = run_demo(
            quick=quick, overrides=overrides or [], mode="overwrite" if overwrite else "resume"
        )
        typer.echo(report.read_text())
        typer.echo(f"report: {report}")
