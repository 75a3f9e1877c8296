"""Configs of the data pipeline: corpus, features, augmentation, tokenizer, batching."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FeatureConfig:
    """80-d Kaldi-compatible log-mel filterbanks of audio resampled to ``sample_rate``.

    ``normalize``: mean/variance normalisation per utterance, with the training set's global
    statistics, or per speaker (each speaker's statistics over its utterances in the loader's
    splits, pooled — what Kaldi recipes call per-speaker CMVN; the global statistics where the
    speaker is unknown). ``level_db``: each waveform
    is scaled to this RMS level in dBFS before features (None: leave the level alone). ``cache``:
    "memory" keeps the features of each utterance once computed (used only where no waveform
    augmentation runs).
    """

    sample_rate: int = 16000
    num_mel_bins: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    normalize: str = "utterance"  # "utterance" | "global" | "speaker" | "none"
    dither: float = 0.0
    level_db: float | None = -25.0
    cache: str = "none"  # "none" | "memory"


@dataclass
class AugmentConfig:
    """Augmentation (training only); each part switchable, all seeded from the experiment seed.

    SpecAugment (Park et al., 2019) with adaptive time masks (Park et al., 2020): up to
    ``time_masks`` masks, ``time_mask_per_frame`` of them per frame, each at most
    ``time_mask_ratio`` of the length. Waveform parts, each applied with its probability: speed
    perturbation by a factor from ``speed_factors``; additive noise at an SNR drawn uniformly in
    [min, max] of ``noise_snr_db`` (noise from the audio files in ``noise_dir``, else synthetic
    white/pink/brown noise); reverberation with a simulated room response of RT60 in ``reverb_rt60``
    seconds; a telephone channel (300–3400 Hz, 8 kHz, μ-law). VTLP on the features: with
    probability ``vtlp_prob``, a warp factor α drawn uniformly in [min, max] of ``vtlp_alpha``.
    """

    spec_augment: bool = True
    freq_masks: int = 2
    freq_mask_width: int = 27
    time_masks: int = 10
    time_mask_ratio: float = 0.05
    time_mask_per_frame: float = 0.04
    speed_perturb: bool = False
    speed_factors: list[float] = field(default_factory=lambda: [0.9, 1.0, 1.1])
    noise_snr_db: list[float] = field(default_factory=list)
    noise_prob: float = 0.5
    noise_dir: str = ""
    reverb_prob: float = 0.0
    reverb_rt60: list[float] = field(default_factory=lambda: [0.2, 0.8])
    telephone_prob: float = 0.0
    vtlp_prob: float = 0.0
    vtlp_alpha: list[float] = field(default_factory=lambda: [0.9, 1.1])


@dataclass
class TokenizerConfig:
    """``kind``: "char", "bpe" or "unigram"; ``vocab_size`` (blank included) is for SentencePiece.

    Text normalisation: Unicode form, case, punctuation removal (keeping ``keep_punctuation``).
    """

    kind: str = "char"
    vocab_size: int = 256
    lowercase: bool = False
    uppercase: bool = False
    remove_punctuation: bool = True
    keep_punctuation: str = "'"
    unicode_form: str = "NFC"
    character_coverage: float = 1.0


@dataclass
class BatchingConfig:
    """Length-bucketed dynamic batches holding at most ``max_duration`` seconds of audio.

    With ``num_workers`` > 0, batches are made in worker processes started by ``worker_start``
    ("forkserver", "spawn" or "fork"; fork copies a process whose other threads may hold locks, so
    it is not the default; with the other two a script that builds the loader needs an
    ``if __name__ == "__main__":`` guard), and waiting longer than ``worker_timeout_s`` seconds
    for the next batch is an error instead of a silent hang (0: no limit).
    """

    max_duration: float = 30.0
    num_buckets: int = 10
    shuffle: bool = True
    num_workers: int = 0
    worker_start: str = "forkserver"
    worker_timeout_s: float = 600.0


@dataclass
class DataConfig:
    """Where the corpus is and how it becomes batches. Manifests are JSONL files (see docs/data.md).

    ``domains`` maps a manifest's ``domain`` field to an id; empty: source=0, target=1, other names
    in order of appearance. Utterances outside [``min_utt_duration``, ``max_utt_duration``] seconds
    are bad input; ``skip_bad`` skips and counts bad items instead of raising.
    """

    corpus: str = "synth"  # "synth" | "fsdd" | "manifest"
    root: str = "data/synth"
    synth_seed: int = 0  # corpus == "synth": generated on first use with this seed and size scale
    synth_scale: float = 1.0
    train: list[str] = field(default_factory=lambda: ["source_train"])
    valid: list[str] = field(default_factory=lambda: ["source_dev"])
    test: list[str] = field(default_factory=lambda: ["source_test", "target_test"])
    skip_bad: bool = False
    validate: bool = True
    min_utt_duration: float = 0.05
    max_utt_duration: float = 60.0
    domains: dict[str, int] = field(default_factory=dict)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
