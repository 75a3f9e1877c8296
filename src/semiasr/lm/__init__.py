"""Language models for decoding: a token n-gram LM (interpolated Kneser–Ney) and shallow fusion."""

from semiasr.lm.fusion import ShallowFusion
from semiasr.lm.ngram import NgramLM

__all__ = ["NgramLM", "ShallowFusion"]
