"""Load a trained run, decode manifests or audio files with it, and score the result."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semiasr.adapt import domain_context, prepare_adaptation
from semiasr.config import as_object, load_config
from semiasr.data.loader import build_dataloader, corpus_texts
from semiasr.data.manifest import split_label
from semiasr.errors import CheckpointError, ConfigError
from semiasr.eval import EvalReport, Utterance, evaluate, write_report
from semiasr.lm import NgramLM, ShallowFusion
from semiasr.models.build import build_model
from semiasr.tasks.common import load_stats, load_tokenizer
from semiasr.train.checkpoint import load_checkpoint, load_model_state, model_state_of
from semiasr.train.runtime import resolve_device


@dataclass
class Decoder:
    """A trained model ready to decode: weights, tokenizer, config and feature statistics."""

    model: nn.Module
    tokenizer: Any
    cfg: Any
    stats: Any
    device: torch.device
    checkpoint: Path
    fusion: ShallowFusion | None = None  # used by beam search

    @torch.no_grad()
    def decode_batch(self, batch: Any, method: str = "greedy", beam: int = 4) -> list[str]:
        b = batch.to(self.device)
        extra = {"fusion": self.fusion} if method == "beam" and self.fusion is not None else {}
        with routed(self.model, self.cfg, b.domains):
            ids = self.model.transcribe(
                b.features, b.feature_lengths, method=method, beam=beam, **extra
            )
        return [self.tokenizer.decode(x) for x in ids]


def run_lm(decoder: Decoder, order: int = 6, splits: Sequence[str] | None = None) -> NgramLM:
    """An n-gram LM of the transcripts the run trained on (``data.train``, or ``splits``), in the
    run's token ids; built in well under a second for the built-in corpus."""
    names = list(splits) if splits is not None else list(decoder.cfg.data.train)
    texts = corpus_texts(decoder.cfg.data, names)
    return NgramLM.fit(
        [decoder.tokenizer.encode(t) for t in texts], decoder.tokenizer.vocab_size, order
    )


def check_lm_options(
    method: str, weight: float, token_bonus: float, lm_path: str | Path | None
) -> None:
    """LM options only mean something to beam search: refuse them with greedy search."""
    if method != "beam" and (weight != 0.0 or token_bonus != 0.0 or lm_path is not None):
        raise ConfigError(
            f"an LM (--lm-weight, --token-bonus, --lm) needs --method beam, not {method!r}",
            key="method",
        )


def with_lm(
    decoder: Decoder,
    weight: float,
    token_bonus: float = 0.0,
    order: int = 6,
    lm_path: str | Path | None = None,
) -> Decoder:
    """``decoder`` with shallow fusion for beam search: the LM saved at ``lm_path``, else one built
    from the run's training transcripts (:func:`run_lm`). A weight and bonus of 0 (and no
    ``lm_path``) turn it off."""
    if weight == 0.0 and token_bonus == 0.0 and lm_path is None:
        decoder.fusion = None
        return decoder
    lm = NgramLM.load(lm_path) if lm_path is not None else run_lm(decoder, order)
    if lm.vocab_size != decoder.tokenizer.vocab_size:  # before any audio is decoded
        raise ConfigError(
            f"{lm_path}: the LM has {lm.vocab_size} ids but the model's tokenizer has "
            f"{decoder.tokenizer.vocab_size}: an LM must be built with the model's tokenizer",
            key="--lm",
        )
    decoder.fusion = ShallowFusion(lm, weight, token_bonus)
    return decoder


def routed(model: nn.Module, cfg: Any, domains: torch.Tensor) -> contextlib.AbstractContextManager:
    """Per-domain routing for models adapted with MDA; nothing for the others."""
    if cfg.base_run and cfg.adapt.method == "mda":
        return domain_context(model, domains)
    return contextlib.nullcontext()


def checkpoint_of(run_path: Path, which: str = "best") -> Path:
    """``which``: "best", "averaged", "last", or a path to a checkpoint file."""
    ckpts = run_path / "checkpoints"
    if which in {"best", "averaged"}:
        p = ckpts / f"{which}.pt"
        if p.is_file():
            return p
        which = "last"
    if which == "last":
        steps = sorted(
            (int(p.stem.split("-")[1]), p)
            for p in ckpts.glob("step-*.pt")
            if p.stem.split("-")[1].isdigit()
        )
        if not steps:
            raise CheckpointError(f"run {run_path} has no checkpoints in {ckpts}")
        return steps[-1][1]
    p = Path(which)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist")
    return p


def load_trained(
    run_dir: str | Path, which: str = "best", device: str = "cpu", overrides: Sequence[str] = ()
) -> Decoder:
    """Rebuild a run's model from its ``config.yaml``, ``tokenizer.json`` and a checkpoint."""
    run_path = Path(run_dir)
    if not (run_path / "config.yaml").is_file():
        raise CheckpointError(f"{run_path} is not a semiasr run directory (no config.yaml)")
    cfg = as_object(load_config(run_path / "config.yaml", list(overrides)))
    tokenizer = load_tokenizer(run_path)
    model = build_model(cfg.model, tokenizer.vocab_size, cfg.data.features.num_mel_bins)
    if (
        cfg.base_run
    ):  # an adaptation run: its checkpoints hold the base weights and the added modules
        prepare_adaptation(model, cfg.adapt)
    path = checkpoint_of(run_path, which)
    load_model_state(model, model_state_of(load_checkpoint(path), str(path)), str(path))
    dev = resolve_device(device)
    model.to(dev).eval()
    return Decoder(model, tokenizer, cfg, load_stats(run_path), dev, path)


def split_loader(decoder: Decoder, split: str, data_cfg: Any | None = None) -> Any:
    """An evaluation loader over ``split`` of ``data_cfg`` (default: the run's) with the features
    ``decoder``'s model reads (its normalisation statistics); transcripts are kept as text only
    (they may hold symbols training never saw)."""
    return build_dataloader(
        data_cfg if data_cfg is not None else decoder.cfg.data,
        [split],
        decoder.tokenizer,
        train=False,
        seed=0,
        labels=False,
        feature_stats=decoder.stats,
    )


def decode_split(
    decoder: Decoder,
    split: str,
    data_cfg: Any | None = None,
    method: str = "greedy",
    beam: int = 4,
    limit: int | None = None,
) -> tuple[list[Utterance], dict[str, float]]:
    """Decode one split of ``data_cfg`` (default: the run's); returns utterances and timing:
    audio seconds, decode seconds, real-time factor (decode time / audio time)."""
    loader = split_loader(decoder, split, data_cfg)
    table = loader.table
    domain_of = {i: str((c.custom or {}).get("domain", "")) for i, c in zip(table.ids, table.cuts)}
    duration_of = dict(zip(table.ids, table.durations))  # the audio's seconds, whatever the frames
    utts: list[Utterance] = []
    audio_s = decode_s = 0.0
    for batch in loader:
        t0 = time.perf_counter()
        hyps = decoder.decode_batch(batch, method, beam)
        decode_s += time.perf_counter() - t0
        audio_s += sum(duration_of[cid] for cid in batch.cut_ids)
        domains = [domain_of.get(cid, "") for cid in batch.cut_ids]
        speakers = batch.speakers or [""] * len(batch)
        for i, hyp in enumerate(hyps):
            utts.append(Utterance(batch.cut_ids[i], batch.texts[i], hyp, domains[i], speakers[i]))
        if limit is not None and len(utts) >= limit:
            break
    rtf = decode_s / audio_s if audio_s else float("nan")
    return utts, {"audio_s": audio_s, "decode_s": decode_s, "rtf": rtf}


def report_folder(split: str, method: str) -> str:
    """The folder under ``<run>/eval`` for ``split`` decoded with ``method``: a beam search's
    report goes beside the greedy one (``<split>-beam``), not over it. A split given as a
    manifest path reports under ``manifest-<file name>`` (``runs/x/pl.jsonl`` → ``manifest-pl``)."""
    name = split_label(split)
    return name if method == "greedy" else f"{name}-{method}"


def evaluate_run(
    run_dir: str | Path,
    splits: Sequence[str],
    which: str = "best",
    method: str = "greedy",
    beam: int = 4,
    out_dir: str | Path | None = None,
    command: str | None = None,
    data_overrides: Sequence[str] = (),
    lm_weight: float = 0.0,
    token_bonus: float = 0.0,
    lm_order: int = 6,
    lm_path: str | Path | None = None,
    device: str = "cpu",
) -> dict[str, EvalReport]:
    """Decode and score each split on ``device`` ("cpu", "cuda", "cuda:N" or "auto"); write ``report.md``/``report.json``/``wer.png`` per split under
    ``out_dir`` (default ``<run>/eval/<split>``, or ``<run>/eval/<split>-<method>`` for a search
    other than greedy). ``lm_weight``/``token_bonus``: shallow fusion in
    beam search (see :func:`with_lm`)."""
    check_lm_options(method, lm_weight, token_bonus, lm_path)
    decoder = load_trained(run_dir, which, device=device, overrides=data_overrides)
    with_lm(decoder, lm_weight, token_bonus, lm_order, lm_path)
    fusion = decoder.fusion
    what = (
        f"{method} + {fusion.lm.order}-gram LM (weight {lm_weight:g}, bonus {token_bonus:g})"
        if fusion is not None
        else method
    )
    reports = {}
    for split in splits:
        utts, timing = decode_split(decoder, split, method=method, beam=beam)
        rep = evaluate(utts)
        rep.extra.update(
            {"split": split, "method": method, "checkpoint": str(decoder.checkpoint), **timing}
        )
        if fusion is not None:
            rep.extra.update(
                {
                    "lm_weight": lm_weight,
                    "token_bonus": token_bonus,
                    "lm_order": fusion.lm.order,
                    "lm": str(lm_path) if lm_path is not None else "the run's training transcripts",
                }
            )
        target = (
            Path(out_dir) / split_label(split)
            if out_dir
            else Path(run_dir) / "eval" / report_folder(split, method)
        )
        write_report(rep, target, title=f"{split}: {what} decoding", command=command)
        reports[split] = rep
    return reports
