"""Convolutional subsampling: exact output lengths, padding independence, errors."""

from __future__ import annotations

import pytest
import torch

from semiasr.errors import ConfigError
from semiasr.nn import Conv2dSubsampling, min_input_frames, subsampled_lengths


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and do not fight the test workers for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _conv_len(n: int, convs: int) -> int:
    """Output length of ``convs`` convolutions (kernel 3, stride 2, no padding), by definition."""
    for _ in range(convs):
        n = (n - 3) // 2 + 1 if n >= 3 else 0
    return n


@pytest.mark.parametrize("kind", ["conv2d", "dw_striding"])
@pytest.mark.parametrize("factor,convs", [(4, 2), (8, 3)])
def test_lengths_formula_matches_the_convolutions(factor: int, convs: int, kind: str) -> None:
    torch.manual_seed(0)
    sub = Conv2dSubsampling(20, 16, factor=factor, channels=4, kind=kind)
    for t in range(min_input_frames(factor), 80):
        x = torch.randn(1, t, 20)
        y, lengths = sub(x, torch.tensor([t]))
        assert y.shape == (1, _conv_len(t, convs), 16)
        assert int(lengths[0]) == y.shape[1]
    all_t = torch.arange(0, 200)
    expected = torch.tensor([_conv_len(int(t), convs) for t in all_t])
    assert torch.equal(subsampled_lengths(all_t, factor), expected)


def test_min_input_frames_gives_one_frame_and_one_less_gives_none() -> None:
    for factor in (4, 8):
        n = min_input_frames(factor)
        assert int(subsampled_lengths(torch.tensor([n]), factor)[0]) == 1
        assert int(subsampled_lengths(torch.tensor([n - 1]), factor)[0]) == 0


@pytest.mark.parametrize("kind", ["conv2d", "dw_striding"])
@pytest.mark.parametrize("factor", [4, 8])
def test_padding_does_not_change_valid_outputs(factor: int, kind: str) -> None:
    torch.manual_seed(1)
    sub = Conv2dSubsampling(24, 8, factor=factor, channels=6, kind=kind)
    lengths = torch.tensor([61, 40, 23])
    x = torch.randn(3, 61, 24)
    for b, n in enumerate(lengths.tolist()):
        x[b, n:] = 100.0  # garbage in the padding
    y, out_len = sub(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        single, single_len = sub(x[b : b + 1, :n], lengths[b : b + 1])
        assert int(single_len[0]) == int(out_len[b]) == single.shape[1]
        torch.testing.assert_close(y[b, : single.shape[1]], single[0], rtol=1e-5, atol=1e-5)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="4 or 8"):
        Conv2dSubsampling(80, 16, factor=3)
    with pytest.raises(ConfigError, match="too small"):
        Conv2dSubsampling(6, 16, factor=4)


@pytest.mark.parametrize("factor", [4, 8])
def test_too_short_utterances_get_no_frames_alone_or_batched(factor: int) -> None:
    """An utterance below min_input_frames has length 0 whether its batch holds longer ones or
    not (a batch of only such utterances raised; one beside a longer utterance decoded to "")."""
    sub = Conv2dSubsampling(80, 16, factor=factor)
    n = min_input_frames(factor)
    alone_y, alone_len = sub(torch.randn(2, n - 1, 80), torch.tensor([n - 1, 3]))
    assert alone_len.tolist() == [0, 0] and alone_y.shape[0] == 2
    _, mixed_len = sub(torch.randn(2, 40, 80), torch.tensor([n - 1, 40]))
    assert mixed_len[0] == 0 and mixed_len[1] == subsampled_lengths(torch.tensor([40]), factor)


def test_depthwise_separable_front_end_is_smaller_and_unknown_kind_is_refused() -> None:
    full = Conv2dSubsampling(80, 128, factor=4)
    dw = Conv2dSubsampling(80, 128, factor=4, kind="dw_striding")
    conv_params = [sum(p.numel() for p in m.conv.parameters()) for m in (full, dw)]
    assert conv_params[1] < conv_params[0] / 5  # 128·9 + 128² per layer instead of 128²·9
    with pytest.raises(ConfigError, match="subsampling kind"):
        Conv2dSubsampling(80, 128, kind="stacking")


@pytest.mark.parametrize("kind", ["conv2d", "dw_striding"])
def test_gradients_match_finite_differences(kind: str) -> None:
    """The ReLUs run in place on the convolutions' outputs; the gradients of the features and of
    every parameter stay those of the formula (float64 finite differences)."""
    torch.manual_seed(2)
    sub = Conv2dSubsampling(12, 4, factor=4, channels=3, kind=kind).double()
    x = torch.randn(2, 15, 12, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([15, 11])
    names, params = zip(*sub.named_parameters(), strict=True)

    def run(x, *flat):
        return torch.func.functional_call(sub, dict(zip(names, flat, strict=True)), (x, lengths))[0]

    assert torch.autograd.gradcheck(run, (x, *params))
