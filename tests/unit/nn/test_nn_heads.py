"""Prediction networks (step-by-step equals forward), the joiner's broadcasting, the CTC head."""

from __future__ import annotations

import pytest
import torch

from semiasr.nn import CTCHead, Joiner, LSTMPredictor, StatelessPredictor


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and do not fight the test workers for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("kind", ["stateless", "stateless3", "lstm"])
def test_step_by_step_equals_forward(kind: str) -> None:
    torch.manual_seed(0)
    if kind == "lstm":
        pred = LSTMPredictor(11, 16, num_layers=2, dropout=0.0)
    else:
        pred = StatelessPredictor(11, 16, context_size=3 if kind == "stateless3" else 2)
    pred.eval()
    tokens = torch.randint(1, 11, (3, 6))
    tokens[:, 0] = 0  # start symbol
    full = pred(tokens)
    assert full.shape == (3, 6, 16)
    state = pred.init_state(3)
    for u in range(6):
        out, state = pred.step(tokens[:, u], state)
        torch.testing.assert_close(out, full[:, u], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["stateless", "lstm"])
def test_select_and_where_state(kind: str) -> None:
    torch.manual_seed(0)
    pred = LSTMPredictor(7, 8, dropout=0.0) if kind == "lstm" else StatelessPredictor(7, 8)
    pred.eval()
    state = pred.init_state(3)
    _, s1 = pred.step(torch.tensor([1, 2, 3]), state)
    picked = pred.select_state(s1, torch.tensor([2, 2, 0]))
    mixed = pred.where_state(torch.tensor([True, False, True]), picked, s1)
    # feeding the same next token must give outputs of the selected histories
    nxt = torch.tensor([4, 4, 4])
    out_mixed, _ = pred.step(nxt, mixed)
    out_orig, _ = pred.step(nxt, s1)
    torch.testing.assert_close(out_mixed[0], out_orig[2])
    torch.testing.assert_close(out_mixed[1], out_orig[1])
    torch.testing.assert_close(out_mixed[2], out_orig[0])


def test_stateless_output_depends_only_on_last_context_tokens() -> None:
    torch.manual_seed(0)
    pred = StatelessPredictor(9, 8, context_size=2).eval()
    a = torch.tensor([[0, 1, 2, 3, 4]])
    b = torch.tensor([[0, 5, 6, 3, 4]])
    torch.testing.assert_close(pred(a)[0, 4], pred(b)[0, 4])
    assert not torch.allclose(pred(a)[0, 2], pred(b)[0, 2])


def test_joiner_broadcasts_to_the_lattice() -> None:
    torch.manual_seed(0)
    joiner = Joiner(12, 10, 14, 7)
    enc, pred = torch.randn(2, 5, 12), torch.randn(2, 4, 10)
    z = joiner(enc, pred)
    assert z.shape == (2, 5, 4, 7)
    for t in range(5):
        for u in range(4):
            manual = joiner.output(
                torch.tanh(joiner.enc_proj(enc[:, t]) + joiner.pred_proj(pred[:, u]))
            )
            torch.testing.assert_close(z[:, t, u], manual)
    for name in ("enc_proj", "pred_proj", "output"):
        assert type(getattr(joiner, name)) is torch.nn.Linear


def test_ctc_head_gives_log_probabilities() -> None:
    head = CTCHead(8, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lp = head(torch.randn(2, 3, 8))
    assert lp.shape == (2, 3, 5) and lp.dtype == torch.float32
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(2, 3))


def test_ctc_head_keeps_float64_and_lifts_half_precision() -> None:
    """A float64 model's CTC loss is float64 all the way (it was cast to float32 before session 11:
    float64 gradients then differed between CPU and CUDA by 1e-8); bf16 activations → float32."""
    torch.manual_seed(0)
    head = CTCHead(8, 5).double()
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    lp = head(x)
    assert lp.dtype == torch.float64
    ref = torch.log_softmax(x @ head.output.weight.T + head.output.bias, dim=-1)
    torch.testing.assert_close(lp, ref, rtol=1e-12, atol=1e-12)
    half = CTCHead(8, 5).to(torch.bfloat16)
    assert half(torch.randn(2, 3, 8, dtype=torch.bfloat16)).dtype == torch.float32
