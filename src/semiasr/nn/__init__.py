"""semiasr.nn: layers — convolutional subsampling, Conformer blocks and encoder (full or
chunked-causal), relative-position attention, prediction networks, the joiner and the CTC head."""

from semiasr.nn.attention import RelPositionalEncoding, RelPositionMultiHeadAttention, rel_shift
from semiasr.nn.conformer import (
    ConformerBlock,
    ConformerConfig,
    ConformerEncoder,
    ConvModule,
    EncoderOutput,
    FeedForwardModule,
    SelfAttentionModule,
)
from semiasr.nn.ctc_head import CTCHead
from semiasr.nn.joiner import Joiner
from semiasr.nn.masks import attention_mask, chunk_attention_mask, padding_mask
from semiasr.nn.predictor import LSTMPredictor, StatelessPredictor
from semiasr.nn.subsampling import Conv2dSubsampling, min_input_frames, subsampled_lengths

__all__ = [
    "CTCHead",
    "ConformerBlock",
    "ConformerConfig",
    "ConformerEncoder",
    "Conv2dSubsampling",
    "ConvModule",
    "EncoderOutput",
    "FeedForwardModule",
    "Joiner",
    "LSTMPredictor",
    "RelPositionMultiHeadAttention",
    "RelPositionalEncoding",
    "SelfAttentionModule",
    "StatelessPredictor",
    "attention_mask",
    "chunk_attention_mask",
    "min_input_frames",
    "padding_mask",
    "rel_shift",
    "subsampled_lengths",
]
