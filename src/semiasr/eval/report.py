"""Evaluation reports: WER/CER overall, per domain and per speaker, the worst utterances with aligned
errors; written as markdown, JSON and a plot. ``plot_training_curves`` draws loss and WER from a run's
``metrics.jsonl``."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semiasr.eval.wer import ErrorCounts, aligned_text, error_counts
from semiasr.rundir import atomic_write_text

__all__ = ["EvalReport", "Utterance", "evaluate", "plot_training_curves", "write_report"]


@dataclass
class Utterance:
    """One decoded utterance."""

    id: str
    ref: str
    hyp: str
    domain: str = ""
    speaker: str = ""


@dataclass
class EvalReport:
    overall_wer: ErrorCounts
    overall_cer: ErrorCounts
    by_domain: dict[str, tuple[ErrorCounts, ErrorCounts]]
    by_speaker: dict[str, tuple[ErrorCounts, ErrorCounts]]
    worst: list[tuple[Utterance, ErrorCounts]]
    num_utterances: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def wer(self) -> float:
        return self.overall_wer.rate

    @property
    def cer(self) -> float:
        return self.overall_cer.rate

    def as_dict(self) -> dict[str, Any]:
        return {
            "num_utterances": self.num_utterances,
            "wer": self.overall_wer.as_dict(),
            "cer": self.overall_cer.as_dict(),
            "by_domain": {
                k: {"wer": w.as_dict(), "cer": c.as_dict()} for k, (w, c) in self.by_domain.items()
            },
            "by_speaker": {
                k: {"wer": w.as_dict(), "cer": c.as_dict()} for k, (w, c) in self.by_speaker.items()
            },
            "worst": [
                {
                    "id": u.id,
                    "ref": u.ref,
                    "hyp": u.hyp,
                    "errors": e.errors,
                    "wer": round(e.rate, 2),
                }
                for u, e in self.worst
            ],
            **self.extra,
        }


def evaluate(utterances: Iterable[Utterance], num_worst: int = 10) -> EvalReport:
    """Score every utterance once; group counts by domain and by speaker."""
    utts = list(utterances)
    total_w, total_c = ErrorCounts(), ErrorCounts()
    dom: dict[str, list[ErrorCounts]] = defaultdict(lambda: [ErrorCounts(), ErrorCounts()])
    spk: dict[str, list[ErrorCounts]] = defaultdict(lambda: [ErrorCounts(), ErrorCounts()])
    scored = []
    for u in utts:
        w, c = error_counts(u.ref, u.hyp, "word"), error_counts(u.ref, u.hyp, "char")
        total_w, total_c = total_w + w, total_c + c
        for table, key in ((dom, u.domain), (spk, u.speaker)):
            if key:
                table[key][0] = table[key][0] + w
                table[key][1] = table[key][1] + c
        scored.append((u, w))
    scored.sort(key=lambda x: (-x[1].errors, -x[1].rate, x[0].id))
    return EvalReport(
        overall_wer=total_w,
        overall_cer=total_c,
        by_domain={k: (v[0], v[1]) for k, v in sorted(dom.items())},
        by_speaker={k: (v[0], v[1]) for k, v in sorted(spk.items())},
        worst=[s for s in scored[:num_worst] if s[1].errors > 0],
        num_utterances=len(utts),
    )


def _table(rows: dict[str, tuple[ErrorCounts, ErrorCounts]], title: str) -> list[str]:
    out = [
        f"| {title} | WER % | CER % | words | sub | del | ins |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for k, (w, c) in rows.items():
        out.append(
            f"| {k} | {w.rate:.2f} | {c.rate:.2f} | {w.ref_len} | {w.sub} | {w.dels} | {w.ins} |"
        )
    return out


def to_markdown(report: EvalReport, title: str = "Evaluation", command: str | None = None) -> str:
    lines = [f"# {title}", ""]
    if command:
        lines += ["Made by:", "", "```", command, "```", ""]
    lines += [
        f"{report.num_utterances} utterances: **WER {report.wer:.2f}%**, CER {report.cer:.2f}%.",
        "",
    ]
    if report.by_domain:
        lines += [*_table(report.by_domain, "domain"), ""]
    if report.by_speaker:
        lines += [*_table(report.by_speaker, "speaker"), ""]
    if report.worst:
        lines += ["## Worst utterances", ""]
        for u, e in report.worst:
            lines += [
                f"`{u.id}` ({e.errors} errors)",
                "",
                "```",
                aligned_text(u.ref, u.hyp).rstrip(),
                "```",
                "",
            ]
    return "\n".join(lines)


def write_report(
    report: EvalReport, out_dir: str | Path, title: str = "Evaluation", command: str | None = None
) -> dict[str, Path]:
    """Write ``report.md``, ``report.json`` and ``wer.png`` (WER per domain and per speaker)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "report.md", "json": out / "report.json", "png": out / "wer.png"}
    atomic_write_text(paths["md"], to_markdown(report, title, command))
    atomic_write_text(paths["json"], json.dumps(report.as_dict(), indent=2) + "\n")
    _plot_groups(report, paths["png"])
    return paths


def _plot_groups(report: EvalReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [("domain", report.by_domain), ("speaker", report.by_speaker)]
    groups = [(n, g) for n, g in groups if g] or [
        ("all", {"all": (report.overall_wer, report.overall_cer)})
    ]
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.2), squeeze=False)
    for ax, (name, rows) in zip(axes[0], groups):
        keys = list(rows)
        ax.bar(keys, [rows[k][0].rate for k in keys], color="#4c72b0")
        ax.set_ylabel("WER %")
        ax.set_title(f"WER by {name}")
        ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_training_curves(metrics_jsonl: str | Path, out_png: str | Path, title: str = "") -> Path:
    """Loss (per logged step) and any ``*wer*`` metrics from a run's ``metrics.jsonl``, one figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss: list[tuple[int, float]] = []
    wers: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for line in Path(metrics_jsonl).read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        step = rec.get("step")
        if step is None:
            continue
        if "loss" in rec and rec.get("split", "train") == "train":
            loss.append((step, float(rec["loss"])))
        for k, v in rec.items():
            if "wer" in k and isinstance(v, (int, float)):
                wers[k].append((step, float(v)))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    if loss:
        axes[0].plot(*zip(*loss), lw=1)
    axes[0].set(xlabel="step", ylabel="training loss", title="loss")
    for k, pts in sorted(wers.items()):
        axes[1].plot(*zip(*pts), marker="o", label=k)
    if wers:
        axes[1].legend()
    axes[1].set(xlabel="step", ylabel="WER %", title="WER")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return Path(out_png)
