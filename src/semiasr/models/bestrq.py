"""BEST-RQ: self-supervised pretraining of an encoder by masked prediction of random-projection codes.

"Self-supervised Learning with Random-projection Quantizer for Speech Recognition" (Chiu et al.,
2022). Nothing about the targets is learnt:

    features (B, T, F) ─ stack ``s`` frames ─► x (B, T/s, s·F)
    code_k(x) = argmin_c ‖ normalize(x P_k) − normalize(C_k[c]) ‖₂      P_k: (s·F, d) Xavier, frozen
                                                                        C_k: (V, d) N(0, 1), frozen
    masked features ─► encoder ─► frames (B, T', D) ─► head_k ─► logits (B, T', V) per codebook k

Spans of the input are replaced by noise N(0, σ²) and the encoder is trained to predict, at the
masked output frames only, the codes the unmasked input would have had (cross-entropy,
:class:`semiasr.objectives.BestRQObjective`). Output frame i of a 4× (8×) subsampling front end
sees input frames 4i … 4i+6 (8i … 8i+14), so it is paired with stacked frame i (``s`` = the
subsampling factor). Only the encoder and the heads train; the projections and codebooks are
buffers (saved with the model so that a checkpoint's targets are reproducible, never trained).
After pretraining, ``model.init_encoder`` points a supervised run at the checkpoint: its
``encoder.*`` weights initialise the recogniser's encoder (:func:`load_encoder_weights`).

Masking is defined on the stacked grid: each valid stacked frame starts a span of ``span``
stacked frames with probability ``p``, spans are cut at the utterance's end and may overlap. The
config gives both in input frames as the paper does (start probability per 10 ms frame, span in
10 ms frames); :func:`stacked_mask_params` converts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semiasr.errors import CheckpointError, ConfigError

__all__ = [
    "BestRQ",
    "BestRQConfig",
    "BestRQHead",
    "BestRQOutput",
    "RandomProjectionQuantizer",
    "load_encoder_weights",
    "span_mask",
    "stacked_mask_params",
]


@dataclass
class BestRQConfig:
    """BEST-RQ pretraining (``semiasr pretrain``). ``mask_prob``: probability that an input frame
    starts a masked span; ``mask_frames``: span length in input frames (40 × 10 ms = 400 ms, the
    paper's); ``noise_std``: σ of the noise that replaces masked frames; ``codebook_size`` V,
    ``codebook_dim`` d and ``num_codebooks`` K of the quantizer, whose projections and codebooks
    are drawn from ``quantizer_seed`` (not the run's seed: the targets stay fixed across seeds).
    ``splits``: the corpus splits to pretrain on (their transcripts are not read); empty means
    ``data.train``. ``joint_weight`` > 0 makes ``semiasr train`` train jointly: each supervised
    batch plus a batch of ``splits``' audio through BEST-RQ on the same encoder, weighted by it
    (:class:`semiasr.objectives.JointObjective`); ``joint_batch_duration``: seconds of audio per
    unlabelled batch there (0: as many as a labelled batch, ``data.batching.max_duration``)."""

    codebook_size: int = 8192
    codebook_dim: int = 16
    num_codebooks: int = 1
    mask_prob: float = 0.01
    mask_frames: int = 40
    noise_std: float = 0.1
    quantizer_seed: int = 0
    splits: list[str] | None = None
    joint_weight: float = 0.0
    joint_batch_duration: float = 0.0


def check_bestrq_config(cfg: BestRQConfig) -> None:
    """Raise ConfigError naming the first out-of-range field of ``cfg`` (key ``ssl.<field>``)."""
    checks = [
        ("codebook_size", cfg.codebook_size >= 2, "must be >= 2"),
        ("codebook_dim", cfg.codebook_dim >= 1, "must be >= 1"),
        ("num_codebooks", cfg.num_codebooks >= 1, "must be >= 1"),
        ("mask_prob", 0.0 < cfg.mask_prob < 1.0, "must be in (0, 1)"),
        ("mask_frames", cfg.mask_frames >= 1, "must be >= 1"),
        ("noise_std", cfg.noise_std >= 0.0, "must be >= 0"),
        ("joint_weight", cfg.joint_weight >= 0.0, "must be >= 0"),
        ("joint_batch_duration", cfg.joint_batch_duration >= 0.0, "must be >= 0"),
    ]
    for key, ok, what in checks:
        if not ok:
            raise ConfigError(f"ssl.{key} {what}, got {getattr(cfg, key)}", key=f"ssl.{key}")


def stacked_mask_params(mask_prob: float, mask_frames: int, stack: int) -> tuple[float, int]:
    """(start probability per stacked frame, span in stacked frames) for a start probability per
    input frame and a span in input frames: 1 − (1 − p)^s (some frame of the stack starts a span)
    and ⌈mask_frames / s⌉."""
    return 1.0 - (1.0 - mask_prob) ** stack, max(1, math.ceil(mask_frames / stack))


def span_mask(
    lengths: Tensor,
    num_frames: int,
    prob: float,
    span: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """(B, num_frames) bool: frame t is masked when some frame in t − span + 1 … t started a span
    (each frame below its utterance's length starts one with probability ``prob``); nothing at or
    past ``lengths`` is masked. ``generator``, if given, must be on ``lengths``' device."""
    b = lengths.shape[0]
    device = lengths.device
    valid = torch.arange(num_frames, device=device)[None, :] < lengths[:, None]
    starts = (torch.rand((b, num_frames), generator=generator, device=device) < prob) & valid
    # a frame is covered by a span that started at most span − 1 frames before it
    padded = F.pad(starts.float()[:, None, :], (span - 1, 0))
    covered = F.max_pool1d(padded, kernel_size=span, stride=1)[:, 0, :] > 0
    return covered & valid


class RandomProjectionQuantizer(nn.Module):
    """x (..., input_dim) → codes (..., K) long: for each of K frozen random projections
    P_k (input_dim, d) and codebooks C_k (V, d), the index of the codebook vector nearest to
    x P_k after both are scaled to unit length (the largest dot product of unit vectors is the
    smallest L2 distance). Deterministic for a seed; computed in float32 whatever the input's
    dtype or an enclosing autocast."""

    def __init__(
        self,
        input_dim: int,
        codebook_dim: int = 16,
        codebook_size: int = 8192,
        num_codebooks: int = 1,
        seed: int = 0,
    ):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        bound = math.sqrt(6.0 / (input_dim + codebook_dim))  # Xavier uniform
        proj = (torch.rand(num_codebooks, input_dim, codebook_dim, generator=g) * 2 - 1) * bound
        codebooks = torch.randn(num_codebooks, codebook_size, codebook_dim, generator=g)
        self.register_buffer("projection", proj)
        self.register_buffer("codebooks", F.normalize(codebooks, dim=-1))

    @property
    def num_codebooks(self) -> int:
        return self.codebooks.shape[0]

    @property
    def codebook_size(self) -> int:
        return self.codebooks.shape[1]

    @torch.no_grad()
    def forward(self, x: Tensor, chunk: int = 4096) -> Tensor:
        lead = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1]).float()
        proj, books = self.projection.float(), self.codebooks.float()
        out = torch.empty(flat.shape[0], self.num_codebooks, dtype=torch.long, device=x.device)
        # float32 also under a bf16 autocast (the trainer's): bf16 products change ~3% of codes
        with torch.autocast(x.device.type, enabled=False):
            for i in range(0, flat.shape[0], chunk):  # bounds the (N, K, V) score tensor
                z = F.normalize(torch.einsum("ni,kid->nkd", flat[i : i + chunk], proj), dim=-1)
                out[i : i + chunk] = torch.einsum("nkd,kvd->nkv", z, books).argmax(-1)
        return out.reshape(*lead, self.num_codebooks)


@dataclass
class BestRQOutput:
    """The heads' logits (N, K, V) and the targets (N, K) at the N masked valid output frames only
    (the loss reads nothing else, so the heads run on nothing else); ``mask`` (B, T'') marks those
    frames among the first T'' = min(T', T/s) output frames."""

    logits: Tensor
    targets: Tensor
    mask: Tensor
    num_valid: Tensor | None = None  # valid output frames among the first T'' (a 0-d tensor)


class BestRQHead(nn.Module):
    """The BEST-RQ parts beside an encoder: the frozen quantizer, the masking and a linear head per
    codebook (``encoder_dim`` → V). :meth:`predict` masks, runs the encoder it is given and
    predicts; the encoder is not part of this module (JUST-style joint training passes the
    recogniser's own, :class:`semiasr.objectives.JointObjective`)."""

    def __init__(
        self, encoder_dim: int, feat_dim: int, stack: int, cfg: BestRQConfig | None = None
    ):
        super().__init__()
        cfg = cfg or BestRQConfig()
        check_bestrq_config(cfg)
        if stack < 1:
            raise ConfigError(f"stack must be >= 1, got {stack}")
        self.feat_dim, self.stack = feat_dim, stack
        self.noise_std = cfg.noise_std
        self.start_prob, self.span = stacked_mask_params(cfg.mask_prob, cfg.mask_frames, stack)
        self.quantizer = RandomProjectionQuantizer(
            feat_dim * stack,
            cfg.codebook_dim,
            cfg.codebook_size,
            cfg.num_codebooks,
            cfg.quantizer_seed,
        )
        self.heads = nn.Linear(encoder_dim, cfg.num_codebooks * cfg.codebook_size)

    def predict(
        self,
        encoder: nn.Module,
        features: Tensor,
        lengths: Tensor,
        generator: torch.Generator | None = None,
    ) -> BestRQOutput:
        """Mask ``features``, encode them with ``encoder`` and predict the codes of the masked
        frames. ``generator`` (optional, on the features' device) draws the mask and the noise;
        else torch's default generator of that device."""
        if features.shape[-1] != self.feat_dim:
            raise ValueError(
                f"features have {features.shape[-1]} bins, the quantizer {self.feat_dim}"
            )
        b, t, f = features.shape
        n = t // self.stack
        stacked = features[:, : n * self.stack].reshape(b, n, self.stack * f)  # unmasked
        mask = span_mask(lengths // self.stack, n, self.start_prob, self.span, generator)
        frame_mask = mask.repeat_interleave(self.stack, dim=1)
        frame_mask = F.pad(frame_mask, (0, t - frame_mask.shape[1]))
        noise = torch.randn(features.shape, generator=generator, device=features.device)
        noise = noise.to(features.dtype)
        masked = torch.where(frame_mask[..., None], noise * self.noise_std, features)
        enc = encoder(masked, lengths)
        m = min(enc.frames.shape[1], n)
        valid = torch.arange(m, device=features.device)[None, :] < enc.lengths[:, None]
        mask = mask[:, :m] & valid
        k, v = self.quantizer.num_codebooks, self.quantizer.codebook_size
        logits = self.heads(enc.frames[:, :m][mask]).view(-1, k, v)
        targets = self.quantizer(stacked[:, :m][mask])  # only the frames the loss reads
        return BestRQOutput(logits, targets, mask, valid.sum())


class BestRQ(BestRQHead):
    """An encoder (``features, lengths → EncoderOutput``, e.g. :class:`semiasr.nn.ConformerEncoder`)
    with BEST-RQ heads and a frozen quantizer, for pretraining: ``forward`` masks, encodes and
    predicts. Its weights are ``encoder.*``, ``quantizer.*`` and ``heads.*``."""

    def __init__(
        self,
        encoder: nn.Module,
        feat_dim: int,
        stack: int,
        cfg: BestRQConfig | None = None,
    ):
        super().__init__(encoder.output_dim, feat_dim, stack, cfg)
        self.encoder = encoder

    def forward(
        self, features: Tensor, lengths: Tensor, generator: torch.Generator | None = None
    ) -> BestRQOutput:
        return self.predict(self.encoder, features, lengths, generator)


def load_encoder_weights(encoder: nn.Module, path: str | Path) -> Path:
    """Copy the ``encoder.*`` weights of a checkpoint into ``encoder`` (a BEST-RQ pretraining run's,
    or any semiasr model's). ``path``: a checkpoint file, or a run directory (its
    ``checkpoints/averaged.pt`` if there — an ASR run's end product; pretraining writes none —
    else its last step checkpoint; ``best.pt`` only when named as a file). Raises CheckpointError
    naming every key that does not fit. Returns the file read."""
    from semiasr.train.checkpoint import (
        CheckpointManager,
        load_checkpoint,
        load_model_state,
        model_state_of,
    )

    path = Path(path)
    if path.is_dir():
        ckpts = CheckpointManager(path / "checkpoints", keep_last=1)
        latest = ckpts.latest()
        if ckpts.averaged_path.is_file():
            path = ckpts.averaged_path
        elif latest is not None:
            path = latest
        else:
            raise CheckpointError(f"{path} holds no checkpoints/averaged.pt or step-*.pt")
    state = model_state_of(load_checkpoint(path), source=f"checkpoint {path}")
    prefix = "encoder."
    sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not sub:
        raise CheckpointError(f"checkpoint {path} holds no encoder.* weights")
    load_model_state(encoder, sub, source=f"the encoder of checkpoint {path}")
    return path
