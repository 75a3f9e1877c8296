"""HFEncoder on a tiny wav2vec 2.0 built from a config and saved locally: nothing is downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

transformers = pytest.importorskip(
    "transformers", reason="the optional 'hf' extra is not installed"
)

from semiasr.adapt import add_adapters, prepare_adaptation  # noqa: E402
from semiasr.adapt.hf import HFEncoder  # noqa: E402
from semiasr.errors import CheckpointError  # noqa: E402

pytestmark = pytest.mark.slow  # importing transformers takes seconds


def tiny_wav2vec2_config(**overrides: float | int) -> Any:
    """A wav2vec 2.0 of 32 dimensions (3 layers unless ``num_hidden_layers`` says otherwise)."""
    fields = dict(
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16),
        conv_stride=(5, 2),
        conv_kernel=(10, 3),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    return transformers.Wav2Vec2Config(**{**fields, **overrides})


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    cfg = tiny_wav2vec2_config(
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
    )
    path = tmp_path_factory.mktemp("tiny_wav2vec2")
    transformers.Wav2Vec2Model(cfg).save_pretrained(path)
    return path


def waves() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 1600, generator=g)
    x[1, 1000:] = 0.0
    return x, torch.tensor([1600, 1000])


def test_hf_encoder_returns_frames_lengths_and_layer_outputs(tiny_dir: Path) -> None:
    enc = HFEncoder.from_pretrained(tiny_dir).eval()
    x, n = waves()
    out = enc(x, n)
    expected_lengths = enc.model._get_feat_extract_output_lengths(n)
    assert torch.equal(out.lengths, expected_lengths)
    assert out.frames.shape == (2, int(expected_lengths[0]), 32)
    assert len(out.hidden) == 3 and all(h.shape == out.frames.shape for h in out.hidden)
    assert torch.all(out.frames[1, int(out.lengths[1]) :] == 0)
    for b in range(2):  # each utterance alone, straight through transformers
        alone = enc.model(x[b : b + 1, : int(n[b])]).last_hidden_state[0]
        torch.testing.assert_close(out.frames[b, : int(out.lengths[b])], alone, atol=1e-5, rtol=0)


def test_hf_encoder_takes_adapters_bit_identically(tiny_dir: Path) -> None:
    enc = HFEncoder.from_pretrained(tiny_dir).eval()
    x, n = waves()
    before = enc(x, n).frames
    holder = nn.Module()
    holder.encoder = enc
    added = add_adapters(holder, "encoder." + HFEncoder.layers_pattern, ["output"], 4)
    assert len(added) == 3
    assert torch.equal(enc(x, n).frames, before)


class Recogniser(nn.Module):
    def __init__(self, encoder: HFEncoder, vocab: int = 5):
        super().__init__()
        self.encoder = encoder
        self.joiner = nn.Linear(encoder.output_dim, vocab)

    def forward(self, x: Tensor, n: Tensor) -> Tensor:
        return self.joiner(self.encoder(x, n).frames)


@pytest.mark.parametrize("method", ["hff", "hff+adapters"])
def test_hff_over_a_frozen_hf_encoder(tiny_dir: Path, method: str) -> None:
    model = Recogniser(HFEncoder.from_pretrained(tiny_dir)).eval()
    prepare_adaptation(model, method, layers=HFEncoder.layers_pattern, bottleneck=4)
    x, n = waves()
    model(x, n).logsumexp(-1).sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.fusion.parameters())
    assert model.joiner.weight.grad is not None
    if method == "hff+adapters":
        assert all(p.grad is not None for p in model.adapters.parameters())


def test_missing_model_folder_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="cannot load a transformers model"):
        HFEncoder.from_pretrained(tmp_path / "nowhere")


def _tiny_hubert(path: Path) -> None:
    cfg = transformers.HubertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16),
        conv_stride=(5, 2),
        conv_kernel=(10, 3),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    transformers.HubertModel(cfg).save_pretrained(path)


def _tiny_w2v_bert(path: Path) -> None:
    cfg = transformers.Wav2Vec2BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        feature_projection_input_dim=160,
        output_hidden_size=32,
        conv_depthwise_kernel_size=3,
    )
    transformers.Wav2Vec2BertModel(cfg).save_pretrained(path)


@pytest.mark.parametrize(
    ("build", "inputs"),
    [
        (_tiny_hubert, lambda: waves()),
        (_tiny_w2v_bert, lambda: (torch.randn(2, 30, 160), torch.tensor([30, 21]))),
    ],
    ids=["hubert", "w2v-bert"],
)
def test_other_foundation_encoders(tmp_path: Path, build, inputs) -> None:
    torch.manual_seed(0)
    build(tmp_path)
    enc = HFEncoder.from_pretrained(tmp_path).eval()
    x, n = inputs()
    out = enc(x, n)
    assert len(out.hidden) == 2 and out.frames.shape[-1] == 32
    assert torch.equal(out.lengths, enc.model._get_feat_extract_output_lengths(n).long())
    b = 1  # the padded utterance alone, straight through transformers
    alone = enc.model(x[b : b + 1, : int(n[b])]).last_hidden_state[0]
    torch.testing.assert_close(out.frames[b, : int(out.lengths[b])], alone, atol=1e-5, rtol=0)


def test_layerdrop_is_off_so_fusion_sees_every_layer(tmp_path: Path) -> None:
    """transformers' LayerDrop skips layers in train mode, and a skipped layer never runs the
    fusion's hooks: with the model's own 0.9, nearly every training step would lose a layer."""
    torch.manual_seed(0)
    cfg = tiny_wav2vec2_config(num_hidden_layers=4, layerdrop=0.9)
    transformers.Wav2Vec2Model(cfg).save_pretrained(tmp_path)
    enc = HFEncoder.from_pretrained(tmp_path)
    assert enc.model.config.layerdrop == 0.0
    model = Recogniser(enc).train()
    prepare_adaptation(model, "hff", layers=HFEncoder.layers_pattern)
    x, n = waves()
    for _ in range(10):  # each step raised with probability 1 - 0.1**4 before
        model(x, n).logsumexp(-1).sum().backward()
    assert all(p.grad is not None for p in model.fusion.parameters())
    kept = HFEncoder(transformers.Wav2Vec2Model(cfg), layerdrop=0.5)
    assert kept.model.config.layerdrop == 0.5
