"""semiasr.decoding: greedy and beam search for transducers (batched) and CTC (greedy, prefix beam).

Searches take encoder outputs and the model's heads (tensors and ``nn`` modules), never a whole
model, so they depend on nothing above :mod:`semiasr.nn`."""

from semiasr.decoding.ctc import ctc_greedy_search, ctc_prefix_beam_search
from semiasr.decoding.result import Decoded
from semiasr.decoding.transducer import transducer_beam_search, transducer_greedy_search

__all__ = [
    "Decoded",
    "ctc_greedy_search",
    "ctc_prefix_beam_search",
    "transducer_beam_search",
    "transducer_greedy_search",
]
