"""Model building: presets and their sizes, config resolution, encode/forward/transcribe."""

from __future__ import annotations

import pytest
import torch

from semiasr.errors import ConfigError
from semiasr.models import (
    CTCModel,
    EncoderOutput,
    ModelConfig,
    Transducer,
    build_model,
    count_parameters,
    resolve_model_config,
)
from semiasr.nn import LSTMPredictor, StatelessPredictor


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and do not fight the test workers for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Documented in docs/models.md (transducer, stateless predictor, vocabulary 500).
RANGES = {"xs": (1.5e6, 2.5e6), "s": (8e6, 13e6), "m": (25e6, 36e6), "l": (100e6, 135e6)}


@pytest.mark.parametrize("preset", ["xs", "s", "m", "l"])
def test_preset_parameter_counts(preset: str) -> None:
    with torch.device("meta"):
        transducer = build_model(ModelConfig(preset=preset), vocab_size=500)
        ctc = build_model(ModelConfig(preset=preset, kind="ctc"), vocab_size=500)
    lo, hi = RANGES[preset]
    assert lo <= count_parameters(transducer) <= hi
    assert lo <= count_parameters(ctc) <= hi
    assert count_parameters(ctc) < count_parameters(transducer)


def test_explicit_sizes_win_over_the_preset() -> None:
    cfg = resolve_model_config(ModelConfig(preset="m", d_model=96, num_layers=1))
    assert (cfg.d_model, cfg.num_layers, cfg.num_heads, cfg.joiner_dim) == (96, 1, 6, 384)


@pytest.mark.parametrize(
    "kw,key",
    [
        ({"kind": "hybrid"}, "model.kind"),
        ({"preset": "xl"}, "model.preset"),
        ({"predictor": "gru"}, "model.predictor"),
        ({"d_model": 100, "num_heads": 3}, "model.d_model"),
        ({"subsampling": 6}, "model.subsampling"),
        ({"conv_kernel": 8}, "model.conv_kernel"),
        ({"ctc_weight": -1.0}, "model.ctc_weight"),
    ],
)
def test_bad_configs_name_the_key(kw: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(**kw), vocab_size=10)
    assert err.value.key == key
    assert key in str(err.value)


def _tiny(kind: str, **kw) -> Transducer | CTCModel:
    torch.manual_seed(0)
    cfg = ModelConfig(kind=kind, d_model=32, num_layers=2, num_heads=2, dropout=0.0, **kw)
    return build_model(cfg, vocab_size=9, feat_dim=20).eval()


@pytest.mark.parametrize("predictor", ["stateless", "lstm"])
def test_transducer_interface(predictor: str) -> None:
    model = _tiny("transducer", predictor=predictor, ctc_weight=0.3)
    assert isinstance(model.predictor, LSTMPredictor if predictor == "lstm" else StatelessPredictor)
    x, lengths = torch.randn(2, 40, 20), torch.tensor([40, 25])
    tokens, token_lengths = torch.tensor([[1, 2, 3], [4, 5, 0]]), torch.tensor([3, 2])
    enc = model.encode(x, lengths, return_hidden=True)
    assert isinstance(enc, EncoderOutput) and enc.frames.shape == (2, 9, 32)
    assert enc.hidden is not None and len(enc.hidden) == 2
    out = model(x, lengths, tokens, token_lengths)
    assert out.logits.shape == (2, 9, 4, 9) and out.lengths.tolist() == [9, 5]
    assert out.ctc_log_probs is not None and out.ctc_log_probs.shape == (2, 9, 9)
    for method in ("greedy", "beam"):
        hyps = model.transcribe(x, lengths, method=method, beam=3)
        assert len(hyps) == 2 and all(0 < k < 9 for h in hyps for k in h)
    with pytest.raises(ConfigError, match="decoding method"):
        model.transcribe(x, lengths, method="viterbi")


def test_ctc_model_interface() -> None:
    model = _tiny("ctc")
    x, lengths = torch.randn(2, 40, 20), torch.tensor([40, 25])
    out = model(x, lengths)
    assert out.log_probs.shape == (2, 9, 9)
    torch.testing.assert_close(out.log_probs.exp().sum(-1), torch.ones(2, 9))
    greedy = model.transcribe(x, lengths)
    assert greedy == [list(map(int, h)) for h in greedy]
    assert len(model.transcribe(x, lengths, method="beam", beam=2)) == 2


def test_causal_model_builds_a_chunked_encoder() -> None:
    model = _tiny("transducer", causal=True, chunk_size=4, left_chunks=1)
    mask = model.encoder.chunk_mask(12, torch.device("cpu"))
    assert mask is not None
    assert not bool(mask[0, 4])  # the future chunk
    assert not bool(mask[11, 3])  # two chunks back
    assert bool(mask[11, 4]) and bool(mask[5, 0]) and bool(mask[1, 3])
    assert _tiny("transducer").encoder.chunk_mask(12, torch.device("cpu")) is None


@pytest.mark.parametrize("kind", ["transducer", "ctc"])
@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_an_utterance_too_short_for_the_front_end_decodes_to_nothing_alone_or_batched(
    kind: str, method: str
) -> None:
    """Below 7 feature frames (~85 ms) the encoder has no frame: the hypothesis is empty whether
    the batch holds only such utterances (that raised) or a longer one too."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind, preset="xs"), vocab_size=10).eval()
    alone = model.transcribe(torch.randn(2, 5, 80), torch.tensor([5, 4]), method=method)
    mixed = model.transcribe(torch.randn(2, 30, 80), torch.tensor([5, 30]), method=method)
    assert alone == [[], []] and mixed[0] == []


@pytest.mark.parametrize("kind", ["transducer", "ctc"])
def test_sequence_log_likelihood_of_an_utterance_without_frames_is_minus_inf(kind: str) -> None:
    """Too short for the front end: −inf (the RNN-T loss refused a length of 0 and stopped the
    whole batch); the other utterance of the batch is scored as it is alone."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind, preset="xs"), vocab_size=10).eval()
    x = torch.randn(2, 30, 80)
    tokens, token_lengths = torch.tensor([[3, 4], [3, 4]]), torch.tensor([2, 2])
    with torch.no_grad():
        both = model.sequence_log_likelihood(
            model.encode(x, torch.tensor([5, 30])), tokens, token_lengths
        )
        alone = model.sequence_log_likelihood(
            model.encode(x[1:], torch.tensor([30])), tokens[1:], token_lengths[1:]
        )
    assert both[0] == -float("inf") and torch.isfinite(both[1])
    torch.testing.assert_close(both[1:], alone, rtol=1e-5, atol=1e-5)
