"""Tasks: small functions that choose model, objective, data and which parameters train, then run.

``train`` (supervised ASR training), ``pretrain`` (BEST-RQ self-supervised pretraining of an
encoder), ``evaluate`` (decode splits and score them), ``transcribe`` (audio
files), ``pseudo`` (pseudo labels of one or more runs as a training manifest), ``demo`` (the
built-in end-to-end demo). The CLI is a thin layer over these.
"""

from __future__ import annotations

from semiasr.tasks.evaluate import Decoder, decode_split, evaluate_run, load_trained
from semiasr.tasks.pretrain import pretrain
from semiasr.tasks.pseudo import pseudo_label
from semiasr.tasks.train import train

__all__ = [
    "Decoder",
    "decode_split",
    "evaluate_run",
    "load_trained",
    "pretrain",
    "pseudo_label",
    "train",
]
