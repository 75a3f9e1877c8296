"""Scoring: WER/CER with alignments, per-domain and per-speaker reports, plots."""

from __future__ import annotations

from semiasr.eval.report import EvalReport, Utterance, evaluate, plot_training_curves, write_report
from semiasr.eval.wer import ErrorCounts, aligned_text, error_counts, wer

__all__ = [
    "ErrorCounts",
    "EvalReport",
    "Utterance",
    "aligned_text",
    "error_counts",
    "evaluate",
    "plot_training_curves",
    "wer",
    "write_report",
]
