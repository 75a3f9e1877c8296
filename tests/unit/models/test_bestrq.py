"""BEST-RQ: the random-projection quantizer against float64 brute force, the span masks against a
loop, the masked input and loss, learning above chance, and encoder initialisation from a
checkpoint."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from semiasr.errors import CheckpointError, ConfigError
from semiasr.models import ModelConfig, build_encoder, build_model, resolve_model_config
from semiasr.models.bestrq import (
    BestRQ,
    BestRQConfig,
    BestRQHead,
    RandomProjectionQuantizer,
    load_encoder_weights,
    span_mask,
    stacked_mask_params,
)
from semiasr.nn.conformer import EncoderOutput
from semiasr.objectives.bestrq import BestRQObjective, JointObjective, bestrq_loss
from semiasr.train.checkpoint import save_checkpoint

TINY = ModelConfig(d_model=32, num_layers=1, num_heads=2, predictor_dim=32, joiner_dim=32)


def brute_codes(q: RandomProjectionQuantizer, x: torch.Tensor) -> torch.Tensor:
    """argmin over the codebook of the L2 distance of unit vectors, in float64, one by one."""
    out = torch.empty(x.shape[0], q.num_codebooks, dtype=torch.long)
    for k in range(q.num_codebooks):
        z = F.normalize(x.double() @ q.projection[k].double(), dim=-1)
        c = F.normalize(q.codebooks[k].double(), dim=-1)
        for n in range(x.shape[0]):
            out[n, k] = int(((c - z[n]) ** 2).sum(-1).argmin())
    return out


def test_quantizer_codes_equal_float64_brute_force() -> None:
    q = RandomProjectionQuantizer(24, codebook_dim=8, codebook_size=64, num_codebooks=2, seed=3)
    x = torch.randn(50, 24)
    assert torch.equal(q(x, chunk=7), brute_codes(q, x))  # chunking changes nothing


def test_quantizer_is_frozen_seeded_and_saved() -> None:
    a, b = RandomProjectionQuantizer(24, seed=1), RandomProjectionQuantizer(24, seed=1)
    c = RandomProjectionQuantizer(24, seed=2)
    assert torch.equal(a.projection, b.projection) and torch.equal(a.codebooks, b.codebooks)
    assert not torch.equal(a.codebooks, c.codebooks)
    assert list(a.parameters()) == []  # buffers: never trained
    assert set(a.state_dict()) == {"projection", "codebooks"}
    # Xavier uniform bound and unit-length codebook vectors
    assert float(a.projection.abs().max()) <= math.sqrt(6 / (24 + 16))
    assert torch.allclose(a.codebooks.norm(dim=-1), torch.ones(1, 8192))


def test_codes_of_normalised_features_are_spread() -> None:
    """Perplexity of the code distribution on 4,000 stacked N(0, 1) frames: far above 1 (the paper's
    check that the quantizer does not collapse)."""
    q = RandomProjectionQuantizer(320, seed=0)
    codes = q(torch.randn(4000, 320))[:, 0]
    p = torch.bincount(codes, minlength=8192).double() / codes.numel()
    perplexity = math.exp(float(-(p[p > 0] * p[p > 0].log()).sum()))
    assert perplexity > 1000


def loop_span_mask(lengths, num_frames, prob, span, draws):
    mask = torch.zeros(len(lengths), num_frames, dtype=torch.bool)
    for b, n in enumerate(lengths.tolist()):
        for t in range(min(n, num_frames)):
            if draws[b, t] < prob:
                mask[b, t : min(t + span, n)] = True
    return mask


@pytest.mark.parametrize("span", [1, 3, 10])
def test_span_mask_equals_a_loop(span: int) -> None:
    lengths = torch.tensor([40, 17, 0, 3])
    gen = torch.Generator().manual_seed(5)
    mask = span_mask(lengths, 40, 0.2, span, gen)
    draws = torch.rand((4, 40), generator=torch.Generator().manual_seed(5))
    assert torch.equal(mask, loop_span_mask(lengths, 40, 0.2, span, draws))
    assert not mask[2].any() and not mask[3, 3:].any()


def test_stacked_mask_params_match_the_input_frame_rates() -> None:
    p, span = stacked_mask_params(0.01, 40, 4)
    assert span == 10 and p == pytest.approx(1 - 0.99**4)
    assert stacked_mask_params(0.01, 41, 4)[1] == 11
    # the masked share of long utterances is about 1 − (1 − p)^span (spans overlap)
    mask = span_mask(torch.full((64,), 2000), 2000, p, span, torch.Generator().manual_seed(0))
    assert float(mask.float().mean()) == pytest.approx(1 - (1 - p) ** span, abs=0.02)


class SpyEncoder(nn.Module):
    """Records its input; frames = a linear map of the 4-frame stacks (T' = T // 4)."""

    output_dim = 8

    def __init__(self, feat_dim: int):
        super().__init__()
        self.proj = nn.Linear(4 * feat_dim, 8)
        self.seen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        self.seen = x.detach().clone()
        b, t, f = x.shape
        frames = self.proj(x[:, : t // 4 * 4].reshape(b, t // 4, 4 * f))
        return EncoderOutput(frames, lengths // 4)


def test_masked_frames_become_noise_and_targets_come_from_the_clean_input() -> None:
    cfg = BestRQConfig(
        codebook_size=32,
        codebook_dim=4,
        num_codebooks=2,
        mask_prob=0.05,
        mask_frames=8,
        noise_std=0.1,
    )
    model = BestRQ(SpyEncoder(6), feat_dim=6, stack=4, cfg=cfg)
    x = torch.randn(3, 42, 6) + 5.0  # far from the noise
    lengths = torch.tensor([42, 30, 9])
    out = model(x, lengths, generator=torch.Generator().manual_seed(1))
    seen = model.encoder.seen
    frame_mask = out.mask.repeat_interleave(4, dim=1)  # output frames 0 … 9 ↔ input 0 … 39
    n = int(out.mask.sum())
    assert (
        out.mask.shape == (3, 10) and out.logits.shape == (n, 2, 32) and out.targets.shape == (n, 2)
    )
    assert out.mask.any() and not out.mask[2, 2:].any()  # nothing past the valid length
    assert torch.equal(seen[:, :40][~frame_mask], x[:, :40][~frame_mask])
    assert seen[:, :40][frame_mask].abs().max() < 1.0  # N(0, 0.01) noise instead of ~5
    assert torch.equal(out.targets, model.quantizer(x[:, :40].reshape(3, 10, 24))[out.mask])


def test_loss_equals_float64_cross_entropy_and_reads_only_masked_frames() -> None:
    logits = torch.randn(6, 2, 7, requires_grad=True)
    targets = torch.randint(0, 7, (6, 2))
    loss, correct = bestrq_loss(logits, targets)
    lp = logits.detach().double().log_softmax(-1)
    want = -lp.gather(-1, targets[..., None]).mean()
    assert float(loss.detach()) == pytest.approx(float(want), rel=1e-6)
    assert int(correct) == int((logits.argmax(-1) == targets).sum())
    # through the model: the encoder's output frames get a gradient at masked frames only
    model = BestRQ(SpyEncoder(6), 6, 4, BestRQConfig(codebook_size=16, mask_prob=0.05))
    frames = {}
    model.encoder.register_forward_hook(lambda m, i, o: frames.update(f=o.frames))
    out = model(torch.randn(2, 80, 6), torch.tensor([80, 60]), torch.Generator().manual_seed(0))
    frames["f"].retain_grad()
    bestrq_loss(out.logits, out.targets)[0].backward()
    grad = frames["f"].grad.abs().sum(-1)
    assert out.mask.any() and out.logits.shape == (int(out.mask.sum()), 1, 16)
    assert torch.equal(grad > 0, out.mask)


def test_no_masked_frame_gives_a_zero_loss_that_backpropagates() -> None:
    logits = torch.randn(0, 1, 4, requires_grad=True)
    loss, correct = bestrq_loss(logits, torch.zeros(0, 1, dtype=torch.long))
    loss.backward()
    assert float(loss.detach()) == 0.0 and int(correct) == 0 and logits.grad.shape == (0, 1, 4)


class _Batch:
    def __init__(self, x: torch.Tensor, lengths: torch.Tensor):
        self.features, self.feature_lengths = x, lengths

    def __len__(self) -> int:
        return self.features.shape[0]

    def to(self, device) -> _Batch:
        return _Batch(self.features.to(device), self.feature_lengths.to(device))


def test_a_conformer_learns_the_codes_above_chance() -> None:
    """A tiny Conformer, 40 AdamW steps on one batch: masked-code accuracy well above 1/V."""
    torch.manual_seed(0)
    enc = build_encoder(resolve_model_config(TINY), 20)
    cfg = BestRQConfig(codebook_size=64, mask_prob=0.02, mask_frames=20)
    model = BestRQ(enc, 20, 4, cfg)
    # smooth "speech-like" features: a random walk, so neighbouring stacks share their codes
    x = torch.randn(4, 200, 20).cumsum(1) / 5
    batch = _Batch(x, torch.tensor([200, 180, 160, 140]))
    objective = BestRQObjective()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    accs = []
    for _ in range(40):
        loss, metrics = objective(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        accs.append(float(metrics["masked_acc"]))
        assert 0.0 < float(metrics["masked_frac"]) < 1.0
    assert sum(accs[-10:]) / 10 > 10 / 64  # chance is 1/64
    assert model.quantizer.projection.grad is None  # the targets never train


def test_encoder_weights_load_from_a_pretraining_checkpoint(tmp_path) -> None:
    enc_cfg = resolve_model_config(TINY)
    pre = BestRQ(build_encoder(enc_cfg, 20), 20, 4, BestRQConfig(codebook_size=16))
    ckpts = tmp_path / "run" / "checkpoints"
    ckpts.mkdir(parents=True)
    save_checkpoint(ckpts / "step-10.pt", {"model": pre.state_dict()})
    save_checkpoint(ckpts / "step-2.pt", {"model": {}})
    model = build_model(TINY, vocab_size=5, feat_dim=20)
    # a run directory without averaged.pt reads its last step checkpoint (10, not 2)
    assert load_encoder_weights(model.encoder, tmp_path / "run") == ckpts / "step-10.pt"
    for name, value in pre.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[name], value), name
    save_checkpoint(ckpts / "averaged.pt", {"model": pre.state_dict()})
    assert load_encoder_weights(model.encoder, tmp_path / "run").name == "averaged.pt"
    # a transducer checkpoint serves as well (its encoder.* keys)
    other = build_model(TINY, vocab_size=9, feat_dim=20)
    save_checkpoint(tmp_path / "asr.pt", {"model": other.state_dict()})
    load_encoder_weights(model.encoder, tmp_path / "asr.pt")
    assert torch.equal(
        model.encoder.layers[0].ff1.linear1.weight, other.encoder.layers[0].ff1.linear1.weight
    )


def test_encoder_weights_that_do_not_fit_are_refused(tmp_path) -> None:
    pre = BestRQ(
        build_encoder(resolve_model_config(TINY), 20), 20, 4, BestRQConfig(codebook_size=16)
    )
    save_checkpoint(tmp_path / "pre.pt", {"model": pre.state_dict()})
    wider = build_model(ModelConfig(d_model=64, num_layers=1, num_heads=2), 5, 20)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_encoder_weights(wider.encoder, tmp_path / "pre.pt")
    save_checkpoint(tmp_path / "heads.pt", {"model": {"heads.weight": torch.zeros(2, 2)}})
    with pytest.raises(CheckpointError, match=r"no encoder\.\* weights"):
        load_encoder_weights(wider.encoder, tmp_path / "heads.pt")
    with pytest.raises(CheckpointError, match="no checkpoints"):
        load_encoder_weights(wider.encoder, tmp_path)


@pytest.mark.parametrize(
    "field, value",
    [
        ("mask_prob", 0.0),
        ("mask_prob", 1.0),
        ("mask_frames", 0),
        ("codebook_size", 1),
        ("noise_std", -1.0),
    ],
)
def test_bad_ssl_settings_are_config_errors(field: str, value: float) -> None:
    cfg = BestRQConfig(**{field: value})
    with pytest.raises(ConfigError, match=f"ssl.{field}"):
        BestRQ(build_encoder(resolve_model_config(TINY), 20), 20, 4, cfg)


class _ListLoader:
    """The parts of :class:`semiasr.data.loader.Loader` JointObjective uses: epochs of batches,
    resumable at a batch."""

    def __init__(self, batches_per_epoch: int, seed: int = 0):
        self.n, self.seed, self.epoch, self.position = batches_per_epoch, seed, 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.position = epoch, 0

    def __iter__(self):
        while self.position < self.n:
            g = torch.Generator().manual_seed(1000 * self.epoch + self.position + self.seed)
            self.position += 1
            yield _Batch(torch.randn(2, 64, 20, generator=g), torch.tensor([64, 50]))

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = state["epoch"], state["position"]


def _joint(weight: float = 0.5, supervised=None):
    torch.manual_seed(0)
    model = build_model(TINY, vocab_size=5, feat_dim=20)
    head = BestRQHead(32, 20, 4, BestRQConfig(codebook_size=16, mask_prob=0.05, mask_frames=8))
    sup = supervised or (lambda m, b: (sum(p.sum() for p in m.predictor.parameters()) * 0.0, {}))
    return model, JointObjective(sup, head, _ListLoader(3), weight)


def test_joint_objective_is_the_supervised_loss_plus_the_weighted_bestrq_loss() -> None:
    def supervised(m, b):
        loss = 1.5 + 0.01 * sum(p.sum() for p in m.predictor.parameters())
        return loss, {"loss": loss.detach(), "rnnt_loss": 1.0}

    model, joint = _joint(weight=0.25, supervised=supervised)
    batch = _Batch(torch.randn(2, 64, 20), torch.tensor([64, 64]))
    torch.manual_seed(3)
    total, metrics = joint(model, batch)
    sup = supervised(model, batch)[0]
    first = next(iter(_ListLoader(3)))
    torch.manual_seed(3)
    out = joint.head.predict(model.encoder, first.features, first.feature_lengths)
    ssl = bestrq_loss(out.logits, out.targets)[0]
    want = float(sup.detach()) + 0.25 * float(ssl.detach())
    assert float(total.detach()) == pytest.approx(want, rel=1e-6)
    assert float(metrics["sup_loss"]) == pytest.approx(float(sup.detach()), rel=1e-6)
    assert float(metrics["loss"]) == pytest.approx(want, rel=1e-6) and metrics["rnnt_loss"] == 1.0
    total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.predictor.parameters())


def test_joint_objective_adds_weighted_bestrq_on_the_models_encoder() -> None:
    model, joint = _joint(weight=0.5)
    batch = _Batch(torch.randn(2, 64, 20), torch.tensor([64, 64]))
    torch.manual_seed(7)
    total, metrics = joint(model, batch)
    # the same unlabelled batch and masks through BEST-RQ directly
    first = next(iter(_ListLoader(3)))
    torch.manual_seed(7)
    out = joint.head.predict(model.encoder, first.features, first.feature_lengths)
    ssl = bestrq_loss(out.logits, out.targets)[0]
    assert float(total.detach()) == pytest.approx(0.5 * float(ssl.detach()), rel=1e-6)
    assert float(metrics["ssl_loss"]) == pytest.approx(float(ssl.detach()), rel=1e-6)
    total.backward()
    grad = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is None or not g.any() for n, g in grad.items() if not n.startswith("encoder."))
    assert any(
        g is not None and g.abs().sum() > 0 for n, g in grad.items() if n.startswith("encoder.")
    )
    assert joint.head.heads.weight.grad.abs().sum() > 0
    assert joint.head.quantizer.projection.grad is None


def test_joint_objective_cycles_epochs_and_resumes_its_unlabelled_stream() -> None:
    model, joint = _joint()
    seen = []
    joint.head.predict = lambda enc, f, l: seen.append(float(f.sum())) or _empty_output()
    batch = _Batch(torch.randn(1, 64, 20), torch.tensor([64]))
    for _ in range(4):  # three batches per epoch: the fourth opens epoch 1
        joint(model, batch)
    state = joint.state_dict()
    assert joint.unlabelled.epoch == 1 and state["_extra_state"]["unlabelled"]["position"] == 1
    ahead = []
    for _ in range(3):
        joint(model, batch)
    ahead, seen[:] = seen[4:], []
    _, other = _joint()
    other.head.predict = joint.head.predict
    other.load_state_dict(state)
    for _ in range(3):
        other(model, batch)
    assert seen == ahead  # the resumed stream yields exactly what the original did


def _empty_output():
    from semiasr.models.bestrq import BestRQOutput

    z = torch.zeros(0, 1, 16, requires_grad=True)
    return BestRQOutput(z, torch.zeros(0, 1, dtype=torch.long), torch.zeros(1, 1, dtype=torch.bool))


def test_joint_weight_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"ssl\.joint_weight"):
        _joint(weight=0.0)


def test_codes_are_float32_codes_under_bf16_autocast_and_for_float64_models() -> None:
    """The trainer's bf16 autocast must not reach the quantizer (bf16 products move ~3% of the
    codes), and a float64 model computes the same float32 codes."""
    q = RandomProjectionQuantizer(320, seed=0)
    x = torch.randn(2000, 320)
    want = q(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(q(x), want)
    assert torch.equal(q.double()(x.double()), want)
    model = BestRQ(
        build_encoder(resolve_model_config(TINY), 20), 20, 4, BestRQConfig(codebook_size=16)
    )
    out = model.double()(torch.randn(2, 64, 20, dtype=torch.float64), torch.tensor([64, 40]))
    assert out.logits.dtype == torch.float64


def test_pretraining_config_choices(tmp_path, monkeypatch) -> None:
    """What `pretrain` changes in a config before training: SpecAugment and averaging off, best.pt
    by masked-code accuracy (highest) or loss (lowest); another metric is refused."""
    import importlib

    from semiasr.config import load_config

    pretrain_module = importlib.import_module("semiasr.tasks.pretrain")

    seen = {}

    def stop(cfg, *a, **k):
        seen["cfg"] = cfg
        raise RuntimeError("stop before any work")

    monkeypatch.setattr(pretrain_module, "prepare_corpus", stop)
    for metric, want in [("wer", ("masked_acc", "max")), ("ssl_loss", ("ssl_loss", "min"))]:
        cfg = load_config("demo", [f"train.best_metric={metric}", "train.best_mode=min"])
        with pytest.raises(RuntimeError, match="stop"):
            pretrain_module.pretrain(cfg)
        c = seen["cfg"]
        assert (c.train.best_metric, c.train.best_mode) == want
        assert c.data.augment.spec_augment is False and c.train.average_last == 0
    with pytest.raises(ConfigError, match="best_metric"):
        pretrain_module.pretrain(load_config("demo", ["train.best_metric=loss"]))
