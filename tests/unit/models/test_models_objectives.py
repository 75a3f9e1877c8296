"""Objectives: values against references, finite gradients, tiny models that overfit one batch."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from semiasr.data.batch import Batch
from semiasr.errors import DataError
from semiasr.models import ModelConfig, build_model
from semiasr.objectives import CTCObjective, TransducerObjective, objective_for

HAVE_FUNCTIONAL = importlib.util.find_spec("semiasr.functional") is not None
needs_functional = pytest.mark.skipif(
    not HAVE_FUNCTIONAL, reason="semiasr.functional (rnnt_loss, ctc_loss) is not built yet"
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and do not fight the test workers for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def torch_ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, **kw):
    """Test-only fallback with semiasr.functional.ctc_loss's batch-first signature."""
    return F.ctc_loss(
        log_probs.transpose(0, 1), targets, input_lengths, target_lengths, blank=blank, **kw
    )


def reference_rnnt_loss(logits, targets, logit_lengths, target_lengths, blank=0, reduction="sum"):
    """Float64 RNN-T negative log-likelihood by the forward recursion (torchaudio semantics)."""
    lp = logits.double().log_softmax(-1)
    losses = []
    for b in range(lp.shape[0]):
        t_len, u_len = int(logit_lengths[b]), int(target_lengths[b])
        y = targets[b].long()
        alpha = [[None] * (u_len + 1) for _ in range(t_len)]
        for t in range(t_len):
            for u in range(u_len + 1):
                terms = []
                if t == 0 and u == 0:
                    terms.append(lp.new_zeros(()))
                if t > 0:
                    terms.append(alpha[t - 1][u] + lp[b, t - 1, u, blank])
                if u > 0:
                    terms.append(alpha[t][u - 1] + lp[b, t, u - 1, y[u - 1]])
                alpha[t][u] = torch.logsumexp(torch.stack(terms), 0)
        losses.append(-(alpha[t_len - 1][u_len] + lp[b, t_len - 1, u_len, blank]))
    total = torch.stack(losses).to(logits.dtype)
    assert reduction in ("sum", "none")
    return total.sum() if reduction == "sum" else total


def _batch(seed: int = 0, vocab: int = 9, feat: int = 20) -> Batch:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([48, 36, 30])
    # no token repeats its predecessor, so that 12 encoder frames fit CTC easily
    steps = torch.randint(1, vocab - 1, (3, 4), generator=g)
    tokens = (steps.cumsum(dim=1) % (vocab - 1)) + 1
    token_lengths = torch.tensor([4, 3, 2])
    tokens[1, 3:] = 0
    tokens[2, 2:] = 0
    features = torch.randn(3, 48, feat, generator=g)
    for b, n in enumerate(lengths.tolist()):
        features[b, n:] = 0
    return Batch(
        features=features,
        feature_lengths=lengths,
        tokens=tokens,
        token_lengths=token_lengths,
        texts=["a", "b", "c"],
        domains=torch.zeros(3, dtype=torch.long),
        cut_ids=["u0", "u1", "u2"],
    )


def _tiny(kind: str, **kw):
    torch.manual_seed(0)
    cfg = ModelConfig(kind=kind, d_model=32, num_layers=1, num_heads=2, dropout=0.0, **kw)
    return build_model(cfg, vocab_size=9, feat_dim=20)


def _check_gradients(model: torch.nn.Module, loss: torch.Tensor) -> None:
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_ctc_objective_value_metrics_and_gradients() -> None:
    model, batch = _tiny("ctc"), _batch()
    loss, metrics = CTCObjective(ctc_loss_fn=torch_ctc_loss)(model, batch)
    out = model(batch.features, batch.feature_lengths)
    expected = torch_ctc_loss(
        out.log_probs, batch.tokens, out.lengths, batch.token_lengths, reduction="sum"
    ) / len(batch)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert metrics["loss"] == pytest.approx(float(loss.detach()))
    assert metrics["num_frames"] == 114 and metrics["num_tokens"] == 9
    assert metrics["num_utterances"] == 3
    _check_gradients(model, loss)


@pytest.mark.parametrize("ctc_weight", [0.0, 0.5])
def test_transducer_objective_against_reference_loss(ctc_weight: float) -> None:
    model, batch = _tiny("transducer", ctc_weight=ctc_weight), _batch(1)
    objective = TransducerObjective(rnnt_loss_fn=reference_rnnt_loss, ctc_loss_fn=torch_ctc_loss)
    loss, metrics = objective(model, batch)
    with torch.no_grad():
        out = model(batch.features, batch.feature_lengths, batch.tokens, batch.token_lengths)
    rnnt = reference_rnnt_loss(out.logits, batch.tokens, out.lengths, batch.token_lengths) / 3
    assert metrics["rnnt_loss"] == pytest.approx(float(rnnt), rel=1e-5)
    expected = float(rnnt)
    if ctc_weight:
        ctc = torch_ctc_loss(
            out.ctc_log_probs, batch.tokens, out.lengths, batch.token_lengths, reduction="sum"
        )
        expected += ctc_weight * float(ctc) / 3
        assert metrics["ctc_loss"] == pytest.approx(float(ctc) / 3, rel=1e-5)
    else:
        assert "ctc_loss" not in metrics
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    _check_gradients(model, loss)


def test_out_of_vocabulary_tokens_raise_data_error_naming_the_cut() -> None:
    model, batch = _tiny("ctc"), _batch()
    batch.tokens[1, 0] = 9
    with pytest.raises(DataError, match=r"u1.*token id 9"):
        CTCObjective(ctc_loss_fn=torch_ctc_loss)(model, batch)


def test_objective_for_picks_by_model_kind() -> None:
    assert isinstance(objective_for(_tiny("ctc")), CTCObjective)
    assert isinstance(objective_for(_tiny("transducer")), TransducerObjective)


def _overfit(model, objective, batch, steps: int = 50) -> tuple[float, float]:
    """Adam on one batch; the first and the last loss."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss, metrics = objective(model, batch)
        loss.backward()
        opt.step()
        losses.append(metrics["loss"])
    return losses[0], losses[-1]


def _references(batch: Batch) -> list[list[int]]:
    return [batch.tokens[b, :n].tolist() for b, n in enumerate(batch.token_lengths.tolist())]


@pytest.mark.slow
def test_tiny_ctc_model_overfits_one_batch() -> None:
    model, batch = _tiny("ctc"), _batch(2)
    objective = CTCObjective(ctc_loss_fn=None if HAVE_FUNCTIONAL else torch_ctc_loss)
    first, last = _overfit(model, objective, batch)
    assert last < 0.1 * first, (first, last)
    model.eval()
    assert model.transcribe(batch.features, batch.feature_lengths) == _references(batch)
    assert model.transcribe(batch.features, batch.feature_lengths, "beam") == _references(batch)


@pytest.mark.slow
@needs_functional
@pytest.mark.parametrize("predictor", ["stateless", "lstm"])
def test_tiny_transducer_overfits_one_batch(predictor: str) -> None:
    model, batch = _tiny("transducer", ctc_weight=0.2, predictor=predictor), _batch(3)
    first, last = _overfit(model, TransducerObjective(), batch)
    assert last < 0.2 * first, (first, last)
    model.eval()
    refs = _references(batch)
    assert model.transcribe(batch.features, batch.feature_lengths) == refs
    # modified beam search emits at most one token per frame, which a model trained for 50 steps
    # with the ordinary RNN-T loss does not always respect; most utterances must come out right
    beam = model.transcribe(batch.features, batch.feature_lengths, method="beam", beam=4)
    assert sum(h == r for h, r in zip(beam, refs)) >= 2, (beam, refs)


@needs_functional
def test_functional_losses_agree_with_references() -> None:
    model, batch = _tiny("transducer", ctc_weight=0.5), _batch(4)
    ours, _ = TransducerObjective()(model, batch)
    ref, _ = TransducerObjective(rnnt_loss_fn=reference_rnnt_loss, ctc_loss_fn=torch_ctc_loss)(
        model, batch
    )
    assert float(ours.detach()) == pytest.approx(float(ref.detach()), rel=1e-4)


def _loss_and_grads(model, objective, batch):
    model.zero_grad(set_to_none=True)
    loss, metrics = objective(model, batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), metrics, grads


@needs_functional
@pytest.mark.parametrize("predictor", ["stateless", "lstm"])
def test_joint_objective_equals_the_materialised_logits_path(predictor: str) -> None:
    """The default CPU path (model(..., rnnt_loss=True), blocked joiner + loss) gives the loss,
    metrics and every parameter's gradient of the path that builds the (B, T', U+1, V) logits."""
    model, batch = _tiny("transducer", ctc_weight=0.3, predictor=predictor), _batch(5)
    model = model.double()
    batch.features = batch.features.double()
    ref, ref_m, ref_g = _loss_and_grads(model, TransducerObjective(joint=False), batch)
    got, got_m, got_g = _loss_and_grads(model, TransducerObjective(), batch)  # CPU: joint
    assert TransducerObjective().joint is None
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=0)
    assert got_m.keys() == ref_m.keys()
    for key, value in ref_m.items():
        assert got_m[key] == pytest.approx(value, rel=1e-12), key
    assert got_g.keys() == ref_g.keys()
    for name in ref_g:
        torch.testing.assert_close(got_g[name], ref_g[name], rtol=1e-9, atol=1e-12)
    out = model(batch.features, batch.feature_lengths, batch.tokens, batch.token_lengths, True)
    assert out.logits is not None and out.rnnt_nll is None
    out = model(
        batch.features, batch.feature_lengths, batch.tokens, batch.token_lengths, rnnt_loss=True
    )
    assert out.logits is None and out.rnnt_nll.shape == (3,)


@needs_functional
@pytest.mark.parametrize("joint", [True, False], ids=["joint", "logits"])
def test_a_frame_less_utterance_counts_zero_and_the_rest_trains(joint: bool) -> None:
    """An utterance too short for the front end (5 frames: no encoder frame) has no alignment: it
    adds 0 to the RNN-T term (and CTC's) and no gradient, on both loss paths, so the others'
    update goes ahead — the loss is the other utterances' sum over the batch size."""
    model = _tiny("transducer", ctc_weight=0.3).double()
    batch = _batch(5)
    batch.features = batch.features.double()
    batch.feature_lengths[2] = 5
    batch.features[2, 5:] = 0
    loss, metrics, grads = _loss_and_grads(model, TransducerObjective(joint=joint), batch)
    assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads.values())
    rest = Batch(
        features=batch.features[:2],
        feature_lengths=batch.feature_lengths[:2],
        tokens=batch.tokens[:2],
        token_lengths=batch.token_lengths[:2],
        texts=batch.texts[:2],
        domains=batch.domains[:2],
        cut_ids=batch.cut_ids[:2],
    )
    ref, ref_m, ref_g = _loss_and_grads(model, TransducerObjective(joint=joint), rest)
    torch.testing.assert_close(loss, ref * 2 / 3, rtol=1e-12, atol=0)
    assert metrics["rnnt_loss"] == pytest.approx(ref_m["rnnt_loss"] * 2 / 3, rel=1e-12)
    for name, g in ref_g.items():
        torch.testing.assert_close(grads[name], g * 2 / 3, rtol=1e-9, atol=1e-12)


@needs_functional
def test_joint_objective_falls_back_for_a_hooked_joiner_output() -> None:
    """A forward hook on the joiner's output layer (LoRA attaches that way) changes the logits; the
    blocked pass, which reads the weights directly, must not skip it."""
    model, batch = _tiny("transducer"), _batch(6)

    def shift(module, args, output):
        return output + torch.arange(output.shape[-1], dtype=output.dtype)

    handle = model.joiner.output.register_forward_hook(shift)
    ref, _, ref_g = _loss_and_grads(model, TransducerObjective(joint=False), batch)
    got, _, got_g = _loss_and_grads(model, TransducerObjective(joint=True), batch)
    torch.testing.assert_close(got, ref)
    for name in ref_g:
        torch.testing.assert_close(got_g[name], ref_g[name])
    handle.remove()
    plain, _, _ = _loss_and_grads(model, TransducerObjective(joint=True), batch)
    assert abs(float(plain) - float(ref)) > 1e-3  # the hook did change the loss


def test_joint_objective_refuses_a_custom_rnnt_loss_fn() -> None:
    with pytest.raises(ValueError, match="rnnt_loss_fn"):
        TransducerObjective(rnnt_loss_fn=reference_rnnt_loss, joint=True)
    batch = _batch()
    with pytest.raises(ValueError, match="token_lengths"):
        _tiny("transducer")(batch.features, batch.feature_lengths, batch.tokens, rnnt_loss=True)


def test_joint_path_is_chosen_on_the_cpu_without_autocast_only() -> None:
    default = TransducerObjective()
    cpu = torch.device("cpu")
    assert default.use_joint(cpu)
    assert not default.use_joint(torch.device("meta"))  # any other device keeps the logits
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not default.use_joint(cpu)
        assert TransducerObjective(joint=True).use_joint(cpu)
    assert not TransducerObjective(joint=False).use_joint(cpu)
    assert not TransducerObjective(rnnt_loss_fn=reference_rnnt_loss).use_joint(cpu)


@needs_functional
def test_bf16_autocast_keeps_the_logits_path() -> None:
    """Under autocast the default objective computes exactly what the logits path does (the blocked
    pass would lift the joiner to float32 and change a bf16 run's numbers)."""
    model, batch = _tiny("transducer", ctc_weight=0.3), _batch(7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref, _, ref_g = _loss_and_grads(model, TransducerObjective(joint=False), batch)
        got, _, got_g = _loss_and_grads(model, TransducerObjective(), batch)
    assert torch.equal(got, ref)
    assert all(torch.equal(got_g[n], ref_g[n]) for n in ref_g)


@needs_functional
def test_joint_objective_with_a_frozen_joiner_matches_the_logits_path() -> None:
    model, batch = _tiny("transducer"), _batch(8)
    model = model.double()
    batch.features = batch.features.double()
    model.joiner.requires_grad_(False)
    ref, _, ref_g = _loss_and_grads(model, TransducerObjective(joint=False), batch)
    got, _, got_g = _loss_and_grads(model, TransducerObjective(joint=True), batch)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=0)
    assert not any(n.startswith("joiner.") for n in [*ref_g, *got_g])
    assert got_g.keys() == ref_g.keys() and len(ref_g) > 0
    for name, g in ref_g.items():
        torch.testing.assert_close(got_g[name], g, rtol=1e-9, atol=1e-12)


def test_plain_joiner_detects_each_way_of_changing_the_joiner() -> None:
    from semiasr.models.transducer import _plain_joiner

    def changes():
        j = _tiny("transducer").joiner
        yield "nothing", j, True
        j = _tiny("transducer").joiner
        j.register_forward_hook(lambda m, a, o: o)
        yield "joiner forward hook", j, False
        j = _tiny("transducer").joiner
        j.output.register_full_backward_hook(lambda m, gi, go: None)
        yield "output backward hook", j, False
        j = _tiny("transducer").joiner
        j.join = lambda e, p: e + p
        yield "join replaced", j, False
        j = _tiny("transducer").joiner
        j.output.forward = lambda x: x
        yield "output forward replaced", j, False

    for what, joiner, plain in changes():
        assert _plain_joiner(joiner) is plain, what
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, a, o: o)
    try:
        assert not _plain_joiner(_tiny("transducer").joiner)
    finally:
        handle.remove()
    assert _plain_joiner(_tiny("transducer").joiner)
