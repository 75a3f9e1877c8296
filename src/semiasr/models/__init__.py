"""semiasr.models: assembled models with one interface — ``encode(features, lengths,
return_hidden)`` → :class:`~semiasr.nn.EncoderOutput`, ``forward`` for the objectives,
``transcribe`` for token ids."""

from semiasr.models.build import build_encoder, build_model, count_parameters
from semiasr.models.config import PRESETS, ModelConfig, resolve_model_config
from semiasr.models.ctc import CTCModel, CTCOutput
from semiasr.models.transducer import Transducer, TransducerOutput
from semiasr.nn.conformer import EncoderOutput

__all__ = [
    "PRESETS",
    "CTCModel",
    "CTCOutput",
    "EncoderOutput",
    "ModelConfig",
    "Transducer",
    "TransducerOutput",
    "build_encoder",
    "build_model",
    "count_parameters",
    "resolve_model_config",
]
