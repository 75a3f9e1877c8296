"""Write torchaudio_rnnt_fixture.json: torchaudio.functional.rnnt_loss values and gradients on small
random batches, for test_semiring_rnnt.py (torchaudio is not a dependency of semiasr).

Run with an interpreter that has torchaudio, e.g. the measuring-only env of docs/benchmarks.md:
    /work/refenv/bin/python tests/unit/semiring/make_torchaudio_fixture.py
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torchaudio
from torchaudio.functional import rnnt_loss

CASES = [
    {"blank": -1, "clamp": -1.0, "fused": True, "reduction": "none"},
    {"blank": 0, "clamp": -1.0, "fused": True, "reduction": "mean"},
    {"blank": 2, "clamp": 0.05, "fused": True, "reduction": "sum"},
    {"blank": -1, "clamp": -1.0, "fused": False, "reduction": "mean"},
    {"blank": 0, "clamp": 0.1, "fused": False, "reduction": "none"},
]


def main() -> None:
    g = torch.Generator().manual_seed(1234)
    out = []
    for i, case in enumerate(CASES):
        bsz, t_max, u_max, v = 3, 5, 3, 6
        for dtype in (torch.float32,):  # torchaudio only takes float32 and float16
            logits = torch.randn(bsz, t_max, u_max + 1, v, generator=g).to(dtype)
            if not case["fused"]:
                logits = logits.log_softmax(-1)
            logits.requires_grad_(True)
            blank = case["blank"] % v
            symbols = torch.tensor([s for s in range(v) if s != blank])
            targets = symbols[torch.randint(0, v - 1, (bsz, u_max), generator=g)].int()
            t_len = torch.tensor([5, 3, 1], dtype=torch.int32)
            u_len = torch.tensor([3, 0, 2], dtype=torch.int32)
            loss = rnnt_loss(
                logits,
                targets,
                t_len,
                u_len,
                case["blank"],
                case["clamp"],
                case["reduction"],
                case["fused"],
            )
            (grad,) = torch.autograd.grad(loss.sum(), logits)
            tensors = {
                "logits": logits.detach(),
                "targets": targets,
                "logit_lengths": t_len,
                "target_lengths": u_len,
                "loss": loss.detach(),
                "grad": grad,
            }
            out.append({**case, "case": i, **{k: t.tolist() for k, t in tensors.items()}})
    path = Path(__file__).with_name("torchaudio_rnnt_fixture.json")
    doc = {"torchaudio": torchaudio.__version__, "torch": torch.__version__, "cases": out}
    path.write_text(json.dumps(doc))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
