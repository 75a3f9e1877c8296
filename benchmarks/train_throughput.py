"""Training throughput: audio seconds per wall-clock second of one transducer training step, ours
against torchaudio's Conformer RNN-T of the same size, timed in alternating rounds.

One step = forward, loss, backward, AdamW step (and zero_grad), on one batch of ``B`` utterances
whose durations d_b are drawn uniformly from [min, max] seconds (seeded; ``--seconds`` fixes them):

    features (B, T, 80), T_b = round(100 · d_b)    (80-d log-mel at 100 frames/s, random values)
    tokens   (B, U),     U_b = round(12 · d_b)     (random ids 1 … V−1; 0 is the blank)
    throughput = Σ_b d_b / step seconds            (audio s / s; padding is not counted)

Ours: ``build_model(ModelConfig(kind="transducer", preset="s"), V)`` (Conformer d_model 256, 6
layers, 4 heads, feed-forward 1024, conv kernel 15, Conv2d subsampling 4×, relative-position
attention, stateless predictor) with the loss that :class:`semiasr.objectives.TransducerObjective`
computes on its logits path (``semiasr.functional.rnnt_loss`` of the float32 logits, summed over
utterances / B; called directly so that forward and loss are timed apart) and ``torch.optim.AdamW``.
``--loss objective`` times the loss as training computes it instead: ``TransducerObjective()(model,
batch)``, which in float32 on the CPU takes the blocked joiner + loss pass
(``semiasr.functional.rnnt_joiner_loss``, never holding the logits); the forward then runs inside
it, so the "loss" phase holds forward and loss and the "forward" phase is empty.

Peer: torchaudio 2.9 no longer ships ``torchaudio.prototype.models.conformer_rnnt_model``, so the
peer is assembled here the way that factory did, from torchaudio's public pieces: frame stacking by
4 (``_TimeReduction``) → Linear(4·80, 256) → ``torchaudio.models.Conformer`` (256, 6 layers,
4 heads, ffn 1024, depthwise kernel 15) → Linear(256, 256) → LayerNorm; ``_Predictor`` (embedding
256, one layer-normalised LSTM of 256); ``_Joiner`` (add, ReLU, Linear(256, V)); wrapped in
``torchaudio.models.RNNT``; loss ``torchaudio.functional.rnnt_loss`` (sum / B); same AdamW. Both
sides use dropout 0.1 and the same lengths. ``--precision bf16`` runs the forward of both under
CPU autocast to bfloat16 (both losses still take float32 logits). ``--flush-denormal`` sets
``torch.set_flush_denormal(True)`` on both sides: a few per cent of the float32 RNN-T logit gradients
are denormal floats, and the joiner's backward matmuls slow down a lot on them (since 2026-11-27 our
``rnnt_loss`` flushes its own gradient's subnormals; the flag still covers every other op).

torchaudio's wheels pin another torch, so the peer runs in a worker process of ``--ref-python``
(this same file with ``--worker``; it imports only torch and torchaudio). The parent asks the worker
for one step at a time, so the rounds alternate ours, peer, ours, peer, … and load from other jobs
affects both alike. Each side does ``--warmup`` untimed steps first (numba loads its JIT cache on
our side's first step). Reported: median (and best) step time and throughput per side, the ratio
ours / peer of the median throughputs, and the median of the per-round ratios.

    python benchmarks/train_throughput.py --threads 2 --precision fp32 \
        --ref-python /work/refenv/bin/python --json runs/bench/train_throughput_t2.json

``--device cuda`` runs both sides on the GPU (our RNN-T loss takes its CUDA kernels, torchaudio's
its own); every phase then ends with ``torch.cuda.synchronize`` so that the times are the GPU's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

FRAMES_PER_SECOND = 100
TOKENS_PER_SECOND = 12
FEAT_DIM = 80
# The size of preset "s" (semiasr.models.config.PRESETS), for the peer.
PEER_SIZE = {"d_model": 256, "layers": 6, "heads": 4, "ffn": 1024, "kernel": 15, "stride": 4}
PHASES = ("forward", "loss", "backward", "optimizer")


# ---------------------------------------------------------------------------------- inputs


def utterance_lengths(spec: dict[str, Any]) -> tuple[list[int], list[int], float]:
    """(frames per utterance, tokens per utterance, audio seconds) of the batch ``spec``."""
    g = torch.Generator().manual_seed(spec["seed"])
    if spec["seconds"]:
        durations = [float(spec["seconds"])] * spec["batch"]
    else:
        lo, hi = spec["min_seconds"], spec["max_seconds"]
        durations = (lo + (hi - lo) * torch.rand(spec["batch"], generator=g)).tolist()
    frames = [round(FRAMES_PER_SECOND * d) for d in durations]
    tokens = [max(1, round(TOKENS_PER_SECOND * d)) for d in durations]
    return frames, tokens, sum(f / FRAMES_PER_SECOND for f in frames)


def make_batch(spec: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """features (B, T, 80) zero past the lengths, frame lengths (B,), tokens (B, U) in 1…V−1
    zero-padded, token lengths (B,)."""
    frames, tokens, _ = utterance_lengths(spec)
    g = torch.Generator().manual_seed(spec["seed"] + 1)
    b = len(frames)
    feats = torch.randn(b, max(frames), FEAT_DIM, generator=g)
    toks = torch.randint(1, spec["vocab"], (b, max(tokens)), generator=g)
    f_len, t_len = torch.tensor(frames), torch.tensor(tokens)
    feats *= (torch.arange(feats.shape[1])[None, :] < f_len[:, None])[..., None]
    toks *= torch.arange(toks.shape[1])[None, :] < t_len[:, None]
    return feats, f_len, toks, t_len


def set_denormal_mode(spec: dict[str, Any]) -> None:
    """``--flush-denormal``: treat denormal floats as zero (FTZ/DAZ) in this process."""
    if spec["flush_denormal"] and not torch.set_flush_denormal(True):
        print("warning: this CPU cannot flush denormals", file=sys.stderr)


def autocast(precision: str, device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def now(device: torch.device) -> float:
    """``time.perf_counter()`` once the device's queued work has finished."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def timed_step(
    forward_loss, opt: torch.optim.Optimizer, precision: str, device: torch.device
) -> dict[str, Any]:
    """Run one training step; ``forward_loss()`` returns (forward output, loss function of it).
    Returns the seconds of each phase and the loss (on a GPU each phase ends synchronised)."""
    t0 = now(device)
    with autocast(precision, device):
        out, loss_of = forward_loss()
    t1 = now(device)
    loss = loss_of(out)
    t2 = now(device)
    loss.backward()
    t3 = now(device)
    opt.step()
    opt.zero_grad(set_to_none=True)
    t4 = now(device)
    phases = dict(zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True))
    return {"seconds": t4 - t0, "phases": phases, "loss": float(loss.detach())}


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------ ours


class Ours:
    """Our preset-s transducer, its RNN-T loss and AdamW on a fixed batch."""

    def __init__(
        self,
        spec: dict[str, Any],
        predictor: str,
        subsampling_channels: int = 0,
        loss: str = "logits",
    ):
        from semiasr.data.batch import Batch
        from semiasr.functional import rnnt_loss
        from semiasr.models import ModelConfig, build_model
        from semiasr.objectives import TransducerObjective

        set_denormal_mode(spec)
        torch.manual_seed(spec["seed"])
        cfg = ModelConfig(
            kind="transducer",
            preset="s",
            predictor=predictor,
            ctc_weight=0.0,
            subsampling_channels=subsampling_channels,
        )
        self.device = torch.device(spec["device"])
        model = build_model(cfg, vocab_size=spec["vocab"], feat_dim=FEAT_DIM)
        self.model = model.train().to(self.device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.rnnt_loss = rnnt_loss
        self.loss = loss
        self.objective = TransducerObjective()
        self.precision = spec["precision"]
        feats, f_len, toks, t_len = make_batch(spec)
        b = len(f_len)
        self.batch = Batch(
            feats, f_len, toks, t_len, [""] * b, torch.zeros(b, dtype=torch.long), [""] * b
        ).to(self.device)

    def step(self) -> dict[str, Any]:
        model, batch, n = self.model, self.batch, len(self.batch)
        if self.loss == "objective":  # as training computes it; the forward runs inside the loss

            def objective_loss():
                def loss_of(_out):  # under the run's precision, as the trainer calls it
                    with autocast(self.precision, self.device):
                        return self.objective(model, batch)[0]

                return None, loss_of

            return timed_step(objective_loss, self.opt, self.precision, self.device)

        def forward_loss():
            out = model(batch.features, batch.feature_lengths, batch.tokens, batch.token_lengths)

            def loss_of(out=out):  # TransducerObjective's logits path (ctc_weight 0)
                loss = self.rnnt_loss(
                    out.logits.float(),
                    batch.tokens.int(),
                    out.lengths.int(),
                    batch.token_lengths.int(),
                    blank=model.blank,
                    reduction="sum",
                )
                return loss / n

            return out, loss_of

        return timed_step(forward_loss, self.opt, self.precision, self.device)


# -------------------------------------------------------------------------- the torchaudio peer


def build_peer(vocab: int, dropout: float = 0.1) -> nn.Module:
    """torchaudio's Conformer RNN-T at the size of our preset s (see the module docstring)."""
    from torchaudio.models import RNNT, Conformer
    from torchaudio.models.rnnt import _Joiner, _Predictor, _TimeReduction

    s = PEER_SIZE

    class ConformerTranscriber(nn.Module):
        def __init__(self):
            super().__init__()
            self.time_reduction = _TimeReduction(s["stride"])
            self.input_linear = nn.Linear(FEAT_DIM * s["stride"], s["d_model"])
            self.conformer = Conformer(
                input_dim=s["d_model"],
                num_heads=s["heads"],
                ffn_dim=s["ffn"],
                num_layers=s["layers"],
                depthwise_conv_kernel_size=s["kernel"],
                dropout=dropout,
            )
            self.output_linear = nn.Linear(s["d_model"], s["d_model"])
            self.layer_norm = nn.LayerNorm(s["d_model"])

        def forward(self, input: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
            x, lengths = self.time_reduction(input, lengths)
            x, lengths = self.conformer(self.input_linear(x), lengths)
            return self.layer_norm(self.output_linear(x)), lengths

    predictor = _Predictor(
        num_symbols=vocab,
        output_dim=s["d_model"],
        symbol_embedding_dim=s["d_model"],
        num_lstm_layers=1,
        lstm_hidden_dim=s["d_model"],
        lstm_layer_norm=True,
        lstm_dropout=dropout,
    )
    return RNNT(ConformerTranscriber(), predictor, _Joiner(s["d_model"], vocab))


class Peer:
    """torchaudio's model, ``rnnt_loss`` and AdamW on the same batch shape (runs in the worker)."""

    def __init__(self, spec: dict[str, Any]):
        from torchaudio.functional import rnnt_loss

        set_denormal_mode(spec)
        torch.manual_seed(spec["seed"])
        self.rnnt_loss = rnnt_loss
        self.device = torch.device(spec["device"])
        self.model = build_peer(spec["vocab"]).train().to(self.device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.precision = spec["precision"]
        batch = make_batch(spec)
        self.feats, self.f_len, self.toks, self.t_len = (t.to(self.device) for t in batch)
        # The predictor reads [blank] + tokens, so the joiner gives the (B, T', U+1, V) lattice.
        self.pred_in = nn.functional.pad(self.toks, (1, 0), value=0)

    def step(self) -> dict[str, Any]:
        n = len(self.f_len)

        def forward_loss():
            logits, lengths, _, _ = self.model(self.feats, self.f_len, self.pred_in, self.t_len + 1)

            def loss_of(logits=logits, lengths=lengths):
                loss = self.rnnt_loss(
                    logits.float(),
                    self.toks.int(),
                    lengths.int(),
                    self.t_len.int(),
                    blank=0,
                    reduction="sum",
                )
                return loss / n

            return logits, loss_of

        return timed_step(forward_loss, self.opt, self.precision, self.device)


def worker(threads: int) -> None:
    """Answer JSON-line requests on stdin: ``init`` (with the batch spec), then ``step``s."""
    import warnings

    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    peer: Peer | None = None
    for line in sys.stdin:
        req = json.loads(line)
        if req["cmd"] == "init":
            import torchaudio

            peer = Peer(req["spec"])
            out: dict[str, Any] = {
                "params": num_params(peer.model),
                "torch": torch.__version__,
                "torchaudio": torchaudio.__version__,
                "threads": torch.get_num_threads(),
            }
        else:
            assert peer is not None
            out = peer.step()
        print(json.dumps(out), flush=True)


class PeerProcess:
    """The worker under ``--ref-python``; ``why_not`` says why there is none."""

    def __init__(self, python: str | None, threads: int, spec: dict[str, Any]):
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}
        self.why_not = ""
        if not python:
            self.why_not = "--ref-python not given"
            return
        try:
            probe = subprocess.run(
                [python, "-c", "import torchaudio.models, torchaudio.functional"],
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError as err:
            self.why_not = f"cannot run --ref-python {python}: {err.strerror}"
            return
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["?"])[-1]
            self.why_not = f"torchaudio cannot be imported by {python}: {last}"
            return
        self.proc = subprocess.Popen(
            [python, __file__, "--worker", "--threads", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.info = self.ask({"cmd": "init", "spec": spec})

    def ask(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the torchaudio worker exited (code {self.proc.wait()})")
        return json.loads(line)

    def step(self) -> dict[str, Any]:
        return self.ask({"cmd": "step"})

    def close(self) -> None:
        if self.proc is not None and self.proc.stdin:
            self.proc.stdin.close()
            self.proc.wait()


# ---------------------------------------------------------------------------------- report


def load_average() -> dict[str, Any]:
    one, five, fifteen = os.getloadavg()
    return {"1min": one, "5min": five, "15min": fifteen}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def summarise(steps: list[dict[str, Any]], audio_seconds: float) -> dict[str, Any]:
    times = [s["seconds"] for s in steps]
    med = statistics.median(times)
    return {
        "steps": len(steps),
        "step_seconds": times,
        "median_step_s": med,
        "best_step_s": min(times),
        "median_audio_s_per_s": audio_seconds / med,
        "best_audio_s_per_s": audio_seconds / min(times),
        "median_phase_s": {p: statistics.median(s["phases"][p] for s in steps) for p in PHASES},
        "losses": [s["loss"] for s in steps],
    }


def print_table(doc: dict[str, Any]) -> None:
    sides = [("ours", doc["ours"]), ("torchaudio", doc["peer"])]
    print(
        f"\n{'side':11} {'params':>8} {'steps':>5} {'median s':>9} {'best s':>7} "
        f"{'audio s/s':>9} {'best':>6}  " + " ".join(f"{p:>9}" for p in PHASES)
    )
    for name, side in sides:
        if side is None:
            print(f"{name:11} {'—':>8}  (not run: {doc['peer_missing']})")
            continue
        print(
            f"{name:11} {side['params'] / 1e6:7.2f}M {side['steps']:5d} "
            f"{side['median_step_s']:9.2f} {side['best_step_s']:7.2f} "
            f"{side['median_audio_s_per_s']:9.2f} {side['best_audio_s_per_s']:6.2f}  "
            + " ".join(f"{side['median_phase_s'][p]:9.2f}" for p in PHASES)
        )
    if doc["ratio_of_medians"] is not None:
        print(
            f"ours/peer audio s/s: {doc['ratio_of_medians']:.2f} (ratio of medians), "
            f"{doc['median_of_round_ratios']:.2f} (median of per-round ratios); goal >= 1.5"
        )


# ------------------------------------------------------------------------------------ main


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--batch", type=int, default=8, help="utterances per batch")
    ap.add_argument("--min-seconds", type=float, default=8.0)
    ap.add_argument("--max-seconds", type=float, default=12.0)
    ap.add_argument("--seconds", type=float, default=0.0, help="fixed duration of every utterance")
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument(
        "--flush-denormal",
        action="store_true",
        help="torch.set_flush_denormal(True) on both sides (the fp32 RNN-T gradients hold some)",
    )
    ap.add_argument("--predictor", choices=("stateless", "lstm"), default="stateless")
    ap.add_argument(
        "--loss",
        choices=("logits", "objective"),
        default="logits",
        help="our loss: rnnt_loss of the logits (forward and loss timed apart), or "
        "TransducerObjective as training calls it (the blocked joiner + loss pass on the CPU in "
        "float32; forward inside the loss phase)",
    )
    ap.add_argument(
        "--subsampling-channels",
        type=int,
        default=0,
        help="width of our Conv2d front end (0: d_model, the preset's default)",
    )
    ap.add_argument("--rounds", type=int, default=5, help="timed steps per side (at most)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps per side")
    ap.add_argument(
        "--budget-s",
        type=float,
        default=220.0,
        help="start no round that would end (by the last round's time) after this many s",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--device",
        default="cpu",
        help="cpu, cuda, cuda:N or auto (both sides; on a GPU each phase ends synchronised)",
    )
    ap.add_argument("--ref-python", default=None, help="an interpreter with torch + torchaudio")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args.threads)
        return
    import numba

    from semiasr.train.runtime import resolve_device

    device = resolve_device(args.device)
    start = time.perf_counter()
    load_start = load_average()
    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    spec = {
        "batch": args.batch,
        "min_seconds": args.min_seconds,
        "max_seconds": args.max_seconds,
        "seconds": args.seconds,
        "vocab": args.vocab,
        "seed": args.seed,
        "precision": args.precision,
        "flush_denormal": args.flush_denormal,
        "device": str(device),
    }
    frames, tokens, audio_seconds = utterance_lengths(spec)
    print(
        f"batch: B={len(frames)}, {audio_seconds:.1f} s of audio, frames {min(frames)}–"
        f"{max(frames)}, tokens {min(tokens)}–{max(tokens)}, V={args.vocab}, "
        f"{args.precision}{', flush denormals' if args.flush_denormal else ''}, "
        f"{args.threads} thread(s), {device}; load average {load_start['1min']:.2f}"
    )
    ours = Ours(spec, args.predictor, args.subsampling_channels, args.loss)
    peer = PeerProcess(args.ref_python, args.threads, spec)
    if peer.proc is None:
        print(f"peer not run ({peer.why_not}); reporting ours only.")
    for _ in range(args.warmup):
        ours.step()
        if peer.proc is not None:
            peer.step()
    ours_steps: list[dict[str, Any]] = []
    peer_steps: list[dict[str, Any]] = []
    last_round = 0.0
    for r in range(args.rounds):
        if r and time.perf_counter() - start + last_round > args.budget_s:
            print(f"stopping after {r} rounds: the next would pass --budget-s {args.budget_s:g}")
            break
        round_start = time.perf_counter()
        ours_steps.append(ours.step())
        line = f"round {r + 1}: ours {ours_steps[-1]['seconds']:.2f} s"
        if peer.proc is not None:
            peer_steps.append(peer.step())
            line += f", peer {peer_steps[-1]['seconds']:.2f} s"
        print(line, flush=True)
        last_round = time.perf_counter() - round_start
    peer.close()

    ours_sum = {"params": num_params(ours.model), **summarise(ours_steps, audio_seconds)}
    peer_sum = None
    ratio = round_ratio = None
    if peer_steps:
        peer_sum = {"params": peer.info["params"], **summarise(peer_steps, audio_seconds)}
        ratio = ours_sum["median_audio_s_per_s"] / peer_sum["median_audio_s_per_s"]
        round_ratio = statistics.median(
            p["seconds"] / o["seconds"] for o, p in zip(ours_steps, peer_steps, strict=True)
        )
    doc = {
        "machine": {
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_start": load_start,
            "load_average_end": load_average(),
            "note": "shared machine (other jobs may run): compare ratios, not absolute times",
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numba": numba.__version__,
            "peer_torch": peer.info.get("torch"),
            "peer_torchaudio": peer.info.get("torchaudio"),
        },
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "threads": args.threads,
        "peer_threads": peer.info.get("threads"),
        "precision": args.precision,
        "flush_denormal": args.flush_denormal,
        "batch": {
            "utterances": len(frames),
            "frames": frames,
            "tokens": tokens,
            "audio_seconds": audio_seconds,
            "vocab": args.vocab,
            "predictor_ours": args.predictor,
            "loss_ours": args.loss,
            "subsampling_channels_ours": args.subsampling_channels,
        },
        "ours": ours_sum,
        "peer": peer_sum,
        "peer_missing": peer.why_not or None,
        "ratio_of_medians": ratio,
        "median_of_round_ratios": round_ratio,
        "wall_seconds": time.perf_counter() - start,
    }
    print_table(doc)
    end = doc["machine"]["load_average_end"]
    print(
        f"load average (uptime) start {load_start['1min']:.2f}/{load_start['5min']:.2f}/"
        f"{load_start['15min']:.2f}, end {end['1min']:.2f}/{end['5min']:.2f}/{end['15min']:.2f}; "
        f"{doc['machine']['cpu']}, torch {torch.__version__}, peer torch "
        f"{peer.info.get('torch')} torchaudio {peer.info.get('torchaudio')}; "
        f"wall {doc['wall_seconds']:.0f} s"
    )
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
