"""Configs of the data pipeline: corpus, features, augmentation, tokenizer, batching."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FeatureConfig:
    """80-d Kaldi-compatible log-mel filterbanks."""

    sample_rate: int = 16000
    num_mel_bins: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    normalize: str = "utterance"  # "utterance" | "global" | "none"


@dataclass
class AugmentConfig:
    """Augmentation; each part switchable, all seeded from the experiment seed."""

    spec_augment: bool = True
    freq_masks: int = 2
    freq_mask_width: int = 27
    time_masks: int = 10
    time_mask_ratio: float = 0.05
    speed_perturb: bool = False
    noise_snr_db: list[float] = field(default_factory=list)
    reverb_prob: float = 0.0
    telephone_prob: float = 0.0


@dataclass
class TokenizerConfig:
    """``kind`` is "char", "bpe" or "unigram"; ``vocab_size`` applies to SentencePiece."""

    kind: str = "char"
    vocab_size: int = 256
    lowercase: bool = False


@dataclass
class BatchingConfig:
    """Length-bucketed dynamic batches holding at most ``max_duration`` seconds of audio."""

    max_duration: float = 30.0
    num_buckets: int = 10
    shuffle: bool = True
    num_workers: int = 0


@dataclass
class DataConfig:
    """Where the corpus is and how it becomes batches. Manifests are JSONL files (see docs/data.md)."""

    corpus: str = "synth"  # "synth" | "fsdd" | "manifest"
    root: str = "data/synth"
    train: list[str] = field(default_factory=lambda: ["source_train"])
    valid: list[str] = field(default_factory=lambda: ["source_test"])
    test: list[str] = field(default_factory=lambda: ["source_test", "target_test"])
    skip_bad: bool = False
    features: FeatureConfig = field(default_factory=FeatureConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
