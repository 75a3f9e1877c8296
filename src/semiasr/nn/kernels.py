"""Numba CPU kernels of :mod:`semiasr.nn.depthwise`: a depthwise convolution over time in the
(B, T, C) layout, forward and backward.

Each loops over (utterance, frame, tap) with the channels innermost — contiguous, so the inner loop
is one vector instruction per 8 or 16 channels — and sums in the input's dtype, tap by tap, except
the weight and bias gradients, which sum over every frame of the batch and do so in float64. Serial:
the demo Conformer's (7, 100-109, 128) inputs with 15 taps take 1.4-1.5 ms forward and backward
(autograd included) against 2.9-3.0 ms for oneDNN's depthwise convolution on two threads
(``benchmarks/depthwise_conv.py``, 2026-11-28).

``valid`` (B, T) uint8, or shape (B, 0) for "every frame": the frames of ``h`` where it is 0 count as
zeros (skipped: the same sums, bit for bit, as zeroing them first) and get no input gradient — a
convolution after a padding mask without the masked copy.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def depthwise_forward(h, w, bias, left, valid, y):  # pragma: no cover - numba
    """y[b, t, c] = bias[c] + Σ_k w[k, c] · h[b, t + k − left, c], h zero outside [0, T) and where
    ``valid`` is 0.

    h (B, T, C), w (K, C) (taps first), bias (C,), y (B, T_out, C)."""
    bsz, t_in, ch = h.shape
    taps = w.shape[0]
    masked = valid.shape[1] > 0
    acc = np.empty(ch, h.dtype)
    for b in range(bsz):
        for t in range(y.shape[1]):
            for c in range(ch):
                acc[c] = bias[c]
            for k in range(max(0, left - t), min(taps, t_in + left - t)):
                src = t + k - left
                if masked and valid[b, src] == 0:
                    continue
                for c in range(ch):
                    acc[c] += w[k, c] * h[b, src, c]
            for c in range(ch):
                y[b, t, c] = acc[c]


@njit(cache=True)
def depthwise_input_grad(w, gy, left, valid, gh):  # pragma: no cover - numba
    """gh[b, s, c] = Σ_k w[k, c] · gy[b, s + left − k, c] over the outputs that read frame s; 0 where
    ``valid`` is 0."""
    bsz, t_in, ch = gh.shape
    t_out = gy.shape[1]
    taps = w.shape[0]
    masked = valid.shape[1] > 0
    acc = np.empty(ch, gh.dtype)
    for b in range(bsz):
        for s in range(t_in):
            for c in range(ch):
                acc[c] = 0.0
            if masked and valid[b, s] == 0:
                for c in range(ch):
                    gh[b, s, c] = acc[c]
                continue
            for k in range(max(0, s + left - t_out + 1), min(taps, s + left + 1)):
                t = s + left - k
                for c in range(ch):
                    acc[c] += w[k, c] * gy[b, t, c]
            for c in range(ch):
                gh[b, s, c] = acc[c]


@njit(cache=True)
def depthwise_weight_grad(h, gy, left, valid, gw, gb):  # pragma: no cover - numba
    """gw[k, c] = Σ_{b,t} gy[b, t, c] · h[b, t + k − left, c] and gb[c] = Σ_{b,t} gy[b, t, c],
    summed in float64 (the frames of h where ``valid`` is 0 left out)."""
    bsz, t_in, ch = h.shape
    taps = gw.shape[0]
    masked = valid.shape[1] > 0
    acc_w = np.zeros((taps, ch))
    acc_b = np.zeros(ch)
    for b in range(bsz):
        for t in range(gy.shape[1]):
            for c in range(ch):
                acc_b[c] += gy[b, t, c]
            for k in range(max(0, left - t), min(taps, t_in + left - t)):
                src = t + k - left
                if masked and valid[b, src] == 0:
                    continue
                for c in range(ch):
                    acc_w[k, c] += gy[b, t, c] * h[b, src, c]
    for k in range(taps):
        for c in range(ch):
            gw[k, c] = acc_w[k, c]
    for c in range(ch):
        gb[c] = acc_b[c]
