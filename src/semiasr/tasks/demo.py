"""The built-in demo: synthesise the multi-domain corpus, train a source-domain transducer, score it on
the source and target test sets, adapt it to the target domain with residual adapters, score again,
and write a report (WER table, training curves, the command that made it)."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from semiasr.config import as_object, load_config
from semiasr.decoding.config import DecodeConfig
from semiasr.eval import evaluate, plot_training_curves, write_report
from semiasr.models.config import resolve_model_config
from semiasr.rundir import atomic_write_text
from semiasr.tasks.adapt import adapt, adaptation_config
from semiasr.tasks.evaluate import decode_split, load_trained, report_folder, with_lm
from semiasr.tasks.train import train

__all__ = ["run_demo"]

DEMO_ADAPT_STEPS = {False: 150, True: 30}
# the adapters recipe that docs/adaptation.md recommends (session 23: 8.6% behind full fine-tuning
# over five seeds on this demo's multi-condition source model, at 4.82% of the encoder, steps 1.53-
# 1.56x faster in two nine-call paired checks — the goal met): bottleneck 64 with SiLU and a
# depthwise convolution of 31 taps over time after it, the norms and depthwise kernels of every
# block but the first trained too, 6e-3 under a cosine schedule (until session 23 the same without
# the convolution: 10.4% behind, 1.54x)
DEMO_ADAPTERS = [
    "adapt.bottleneck=64",
    "adapt.adapter_act=silu",
    "adapt.adapter_conv_kernel=31",
    "optim.lr=0.006",
    "sched.name=cosine",
    "sched.min_lr_ratio=0.02",
]


# adapting, the waveform augmentation of the source training is switched off (SpecAugment stays, the
# features are cached), as in every adaptation table of docs/adaptation.md: the target data are
# what the adapters should learn
DEMO_ADAPT_NO_WAVEFORM_AUGMENTATION = [
    "data.augment.noise_snr_db=[]",
    "data.augment.reverb_prob=0",
    "data.augment.telephone_prob=0",
    "data.augment.speed_perturb=false",
]


def demo_adaptation_overrides(cfg: Any, steps: int) -> list[str]:
    """The demo's adaptation recipe for the model ``cfg`` trains (``DEMO_ADAPTERS``, a warm-up
    of a tenth of ``steps``, the norm and depthwise parameters of blocks 1 … N−1, and no waveform
    augmentation)."""
    layers = resolve_model_config(as_object(cfg).model).num_layers
    also = [f"encoder.layers.{i}.**.{p}" for i in range(1, layers) for p in ("*norm*", "depthwise")]
    return [
        *DEMO_ADAPTERS,
        *DEMO_ADAPT_NO_WAVEFORM_AUGMENTATION,
        f"sched.warmup_steps={max(1, steps // 10)}",
        f"adapt.also_train={json.dumps(also)}",
    ]


def _conditions(cfg: Any) -> str:
    """The waveform conditions the source model trained under, as the report says it ("" for
    none): e.g. " under multi-condition augmentation (noise 0-30 dB SNR 30%, reverberation 20%,
    telephone channel 20%)"."""
    aug = cfg.data.augment
    parts = []
    if aug.noise_snr_db and aug.noise_prob > 0:
        lo, hi = min(aug.noise_snr_db), max(aug.noise_snr_db)
        snr = f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"
        parts.append(f"noise {snr} dB SNR {aug.noise_prob:.0%}")
    if aug.reverb_prob > 0:
        parts.append(f"reverberation {aug.reverb_prob:.0%}")
    if aug.telephone_prob > 0:
        parts.append(f"telephone channel {aug.telephone_prob:.0%}")
    return f" under multi-condition augmentation ({', '.join(parts)})" if parts else ""


def _score(
    run_path: Path,
    splits: list[str],
    title: str,
    which: str = "last",
    decode: DecodeConfig | None = None,
) -> dict[str, dict[str, Any]]:
    """Decode ``splits`` with one of the run's checkpoints (greedy, or as ``decode`` says); write
    per-split reports to ``eval/<split>`` (greedy) or ``eval/<split>-<method>``."""
    decode = decode or DecodeConfig()
    decoder = load_trained(run_path, which)
    if decode.fused:
        with_lm(decoder, decode.lm_weight, decode.token_bonus, decode.lm_order)
    rows: dict[str, dict[str, Any]] = {}
    for split in splits:
        utts, timing = decode_split(decoder, split, method=decode.method, beam=decode.beam)
        rep = evaluate(utts)
        rep.extra.update({"split": split, "decoding": decode.describe(), **timing})
        write_report(
            rep,
            run_path / "eval" / report_folder(split, decode.method),
            title=f"{title}: {split}, {decode.describe()}",
        )
        rows[split] = {
            "wer": rep.wer,
            "cer": rep.cer,
            "utterances": rep.num_utterances,
            "rtf": timing["rtf"],
        }
    return rows


def run_demo(
    quick: bool = False,
    overrides: list[str] | tuple[str, ...] = (),
    mode: str = "resume",
    progress: bool = True,
) -> Path:
    """Run the demo; returns the path of ``report.md``. ``quick`` uses the ``demo_quick`` config
    (a smaller corpus and model, about 3 minutes on 2 cores). The adaptation uses the recipe
    ``DEMO_ADAPTERS`` (+ ``demo_adaptation_overrides``), whatever ``adapt.*``, ``optim.lr`` or
    ``sched.*`` the overrides give the source training; ``semiasr adapt`` on the demo's run
    adapts any other way.

    Source training, then adaptation of the source model to the target domain with residual adapters
    on ``target_train``; both models are scored on both test sets — the source model with the average
    of its last checkpoints (or its last, where the config averages none), the adapted one with its
    last — so the test sets choose nothing. ``mode="resume"`` continues (or skips) finished work."""
    t0 = time.perf_counter()
    cfg = load_config("demo_quick" if quick else "demo", list(overrides))
    run, summary = train(cfg, mode=mode, progress=progress)
    if summary.interrupted:
        raise KeyboardInterrupt(
            f"training interrupted at step {summary.steps}; `semiasr demo` resumes it"
        )
    splits = list(cfg.data.test)
    # the average of the last checkpoints where the config asks for one, else the last; beam
    # search with an LM where the config asks for it (its weight and bonus were tuned on
    # source_dev by benchmarks/lm_fusion.py), so the test sets choose nothing
    rows = {"source model, greedy": _score(run.path, splits, "source model", "averaged")}
    decode = as_object(cfg).decode
    if decode.method != "greedy":  # the source test set only: the LM is the source text's
        rows[f"source model, {decode.describe()}"] = _score(
            run.path, splits[:1], "source model", "averaged", decode
        )
    adapt_cfg = adaptation_config(
        run.path,
        "adapters",
        f"{run.path.name}-adapters",
        [
            f"run_root={run.path.parent}",
            f"train.max_steps={DEMO_ADAPT_STEPS[quick]}",
            f"train.ckpt_every={DEMO_ADAPT_STEPS[quick]}",
            *demo_adaptation_overrides(cfg, DEMO_ADAPT_STEPS[quick]),
        ],
    )
    adapted, adapt_summary = adapt(  # source training that went on since: adapt afresh
        adapt_cfg,
        mode=mode,
        which="averaged",
        progress=progress,
        on_stale="restart",  # the folder is the demo's: another base or recipe adapts afresh
    )
    if adapt_summary.interrupted:
        raise KeyboardInterrupt(
            f"adaptation interrupted at step {adapt_summary.steps}; `semiasr demo` resumes it"
        )
    rows["adapted with adapters, greedy"] = _score(adapted.path, splits, "adapted")
    curves = plot_training_curves(run.metrics_file, run.path / "curves.png", title="demo training")
    command = (
        "semiasr demo"
        + (" --quick" if quick else "")
        + "".join(f" {shlex.quote(o)}" for o in overrides)
    )
    seconds = time.perf_counter() - t0
    report = _report(cfg, rows, summary, adapt_summary, curves.name, command, seconds, decode)
    atomic_write_text(run.path / "report.md", report)
    atomic_write_text(
        run.path / "report.json",
        json.dumps({"command": command, "seconds": seconds, "results": rows}, indent=2) + "\n",
    )
    return run.path / "report.md"


def _report(
    cfg: Any,
    rows: dict[str, dict[str, dict[str, Any]]],
    summary: Any,
    adapt_summary: Any,
    curves: str,
    command: str,
    seconds: float,
    decode: DecodeConfig,
) -> str:
    lines = [
        "# semiasr demo",
        "",
        f"Made by `{command}` in {seconds / 60:.1f} min (source training "
        f"{_minutes(summary)} min, {summary.steps} steps, precision {summary.precision}; "
        f"adaptation {_minutes(adapt_summary)} min, {adapt_summary.steps} steps; training "
        "times over every invocation that led to the checkpoints); "
        f"Python {sys.version.split()[0]}.",
        "",
        f"Model: {cfg.model.kind}, preset {cfg.model.preset}; tokenizer {cfg.data.tokenizer.kind}; "
        f"trained on {', '.join(cfg.data.train)} of `{cfg.data.root}`{_conditions(cfg)}, then "
        "adapted to the target domain with residual adapters on target_train (bottleneck 64, "
        "SiLU, a depthwise convolution of 31 taps over time; the encoder frozen "
        "but for the adapters and the norms and depthwise kernels of the blocks after the first; "
        "prediction network and joiner train too; 6e-3, cosine schedule).",
        "",
        *(
            [
                "Beam search fuses an n-gram LM of the model's own training transcripts "
                "(source_train for the source model); its order, weight and per-token bonus come "
                "from the config (`decode.*`).",
                "",
            ]
            if decode.fused
            else []
        ),
        "| model, decoding | test set | WER % | CER % | utterances | decode RTF |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for model, per_split in rows.items():
        for split, r in per_split.items():
            lines.append(
                f"| {model} | {split} | {r['wer']:.2f} | {r['cer']:.2f} | {r['utterances']} "
                f"| {r['rtf']:.4f} |"
            )
    lines += [
        "",
        f"![training curves]({curves})",
        "",
        "Per-split reports (worst utterances, per speaker): `eval/<split>/report.md` in each run "
        "(`eval/<split>-beam/` for beam search).",
        "",
    ]
    return "\n".join(lines)


def _minutes(summary: Any) -> str:
    """The training's minutes over all its invocations (a resumed run's earlier parts too)."""
    total = summary.total_wall_time_s
    return f"{(total if total is not None else summary.wall_time_s) / 60:.1f}"
