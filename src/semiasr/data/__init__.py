"""semiasr.data: audio, features, augmentation, tokenizers, manifests and the batching loader.

The entry points (imported lazily, so ``import semiasr.data`` stays cheap):

    cuts = load_manifest("../shared/data/fsdd", "train")           # a Lhotse CutSet
    tok = build_tokenizer(data_cfg, corpus_texts(data_cfg, data_cfg.train))
    loader = build_dataloader(data_cfg, data_cfg.train, tok, train=True, seed=0, rank=0,
    world_size=1) for batch in loader: ...                                         #
    semiasr.data.batch.Batch
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Batch": "semiasr.data.batch",
    "DataConfig": "semiasr.data.config",
    "DataReport": "semiasr.data.manifest",
    "load_manifest": "semiasr.data.manifest",
    "validate_cuts": "semiasr.data.manifest",
    "Loader": "semiasr.data.loader",
    "build_dataloader": "semiasr.data.loader",
    "corpus_texts": "semiasr.data.loader",
    "build_tokenizer": "semiasr.data.tokenizer",
    "tokenizer_from_bytes": "semiasr.data.tokenizer",
    "tokenizer_from_dict": "semiasr.data.tokenizer",
    "Fbank": "semiasr.data.features",
    "GlobalStats": "semiasr.data.features",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'semiasr.data' has no attribute {name!r}")
