"""Transcribe audio files with a trained run: read and resample, level, log-mel, normalise, decode —
the same steps the evaluation loader takes."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from semiasr.data.audio import normalize_level, read_audio
from semiasr.data.features import NativeFbank
from semiasr.data.loader import domain_map, normalize_features
from semiasr.errors import ConfigError, DataError
from semiasr.tasks.evaluate import check_lm_options, load_trained, routed, with_lm


def domain_id(cfg: Any, domain: str | None, run_dir: str | Path) -> int | None:
    """The id of ``domain`` (a name of the run's domain map, or a number) for a run adapted with
    per-domain modules (MDA), which cannot decode without one; None for the other runs, which
    refuse a domain."""
    mda = bool(cfg.base_run) and cfg.adapt.method == "mda"
    dmap = domain_map(dict(cfg.data.domains), [])
    if not mda:
        if domain is not None:
            raise ConfigError(
                f"{run_dir}: --domain applies to runs adapted with per-domain modules (mda); "
                f"this run's method is {cfg.adapt.method if cfg.base_run else 'none'}"
            )
        return None
    if domain is None:
        raise ConfigError(
            f"{run_dir} has per-domain modules (adapted with mda): name the audio's domain "
            f"with --domain, one of {dmap}"
        )
    if domain in dmap:
        return dmap[domain]
    if domain.isdigit() and int(domain) in dmap.values():
        return int(domain)
    raise ConfigError(f"{run_dir}: domain {domain!r} is not one of the run's domains {dmap}")


@torch.no_grad()
def transcribe_files(
    run_dir: str | Path,
    files: Sequence[str | Path],
    which: str = "best",
    method: str = "greedy",
    beam: int = 4,
    lm_weight: float = 0.0,
    token_bonus: float = 0.0,
    lm_order: int = 6,
    lm_path: str | Path | None = None,
    device: str = "cpu",
    domain: str | None = None,
) -> Iterator[dict[str, Any]]:
    """One record per file: path, text, audio seconds, decode seconds, real-time factor, decoded on
    ``device`` ("cpu", "cuda", "cuda:N", "auto"). Beam search can fuse an n-gram LM (see
    :func:`semiasr.tasks.evaluate.with_lm`). A run adapted with per-domain modules (MDA) needs
    ``domain``: the name (or id) of the files' domain, whose modules then decode them."""
    check_lm_options(method, lm_weight, token_bonus, lm_path)
    dec = with_lm(
        load_trained(run_dir, which, device=device), lm_weight, token_bonus, lm_order, lm_path
    )
    did = domain_id(dec.cfg, domain, run_dir)
    fcfg = dec.cfg.data.features
    fbank = NativeFbank(fcfg)
    for f in files:
        wave = read_audio(f, target_sample_rate=fcfg.sample_rate)
        t0 = time.perf_counter()
        if fcfg.level_db is not None:
            wave = normalize_level(wave, float(fcfg.level_db))
        feats = fbank(wave)
        if feats.shape[0] == 0:
            raise DataError("audio is shorter than one feature frame", item=str(f))
        feats = normalize_features(feats, fcfg.normalize, dec.stats)
        x = torch.from_numpy(feats)[None].to(dec.device)
        lengths = torch.tensor([feats.shape[0]], device=dec.device)
        extra = {"fusion": dec.fusion} if method == "beam" and dec.fusion is not None else {}
        domains = torch.full((1,), did if did is not None else 0, device=dec.device)
        with routed(dec.model, dec.cfg, domains):
            ids = dec.model.transcribe(x, lengths, method=method, beam=beam, **extra)
        seconds = time.perf_counter() - t0
        audio_s = len(wave) / fcfg.sample_rate
        yield {
            "file": str(f),
            "text": dec.tokenizer.decode(ids[0]),
            "audio_s": round(audio_s, 3),
            "decode_s": round(seconds, 4),
            "rtf": round(seconds / audio_s, 4) if audio_s else None,
        }
