"""Fit the rational tanh of the fused joiner loss's CPU pass (``semiasr.semiring.kernels._TANH_P``,
``_TANH_Q``) and report its float32 error.

tanh(a) ≈ a · P(a²) / Q(a²) on |a| ≤ ``--clamp`` (beyond it the value at the clamp, which rounds to
±1 in float32), P and Q of degree 4 in a², Q(0) = 1, fitted in float64 by iteratively reweighted
linear least squares on the linearised relative error (y · Q(s) − a · P(s)) / y: the weights grow
where the error is largest, so the fit tends towards the minimax one. Then the error of the kernel's
evaluation (float64 Horner, rounded once to float32) is measured on every 7th float32 in
[1e-6, 2 · clamp] against float64 tanh, in float32 ulps, beside numpy's float32 tanh. Prints the
coefficients to paste into the kernel (``--check`` compares them with the kernel's instead)::

    python scripts/fit_tanh.py            # P, Q and their errors
    python scripts/fit_tanh.py --check    # the kernel's constants are this fit's
"""

from __future__ import annotations

import argparse

import numpy as np


def fit(clamp: float, degree: int = 4, iters: int = 200) -> tuple[np.ndarray, np.ndarray, float]:
    """(P, Q, max relative error in float64) of the fit on [0, clamp]."""
    a = np.concatenate([np.linspace(0.0, clamp, 40001)[1:], np.geomspace(1e-8, 1e-2, 400)])
    a.sort()
    y, s = np.tanh(a), a * a
    powers = s[:, None] ** np.arange(degree + 1)
    design = np.concatenate([a[:, None] * powers, -(y * s)[:, None] * powers[:, :degree]], 1)
    w = np.ones_like(a)
    best = (np.zeros(0), np.zeros(0), np.inf)
    for _ in range(iters):
        sw = np.sqrt(w) / y
        coef = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)[0]
        p, q = coef[: degree + 1], np.concatenate([[1.0], coef[degree + 1 :]])
        err = np.abs(a * np.polyval(p[::-1], s) / np.polyval(q[::-1], s) - y) / y
        if err.max() < best[2]:
            best = (p, q, float(err.max()))
        w = w * (err / err.max()) ** 0.3
        w = w / w.max() + 1e-9
    return best


def evaluate(x: np.ndarray, p: np.ndarray, q: np.ndarray, clamp: float) -> np.ndarray:
    """The kernel's arithmetic: float64 Horner on the clamped input, rounded once to float32."""
    a = np.clip(x.astype(np.float64), -clamp, clamp)
    s = a * a
    return (a * np.polyval(p[::-1], s) / np.polyval(q[::-1], s)).astype(np.float32)


def ulps(got: np.ndarray, x: np.ndarray) -> float:
    ref = np.tanh(x.astype(np.float64))
    return float((np.abs(got.astype(np.float64) - ref) / np.spacing(ref.astype(np.float32))).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clamp", type=float, default=9.0)
    ap.add_argument("--check", action="store_true", help="compare with the kernel's constants")
    args = ap.parse_args()
    p, q, rel = fit(args.clamp)
    lo, hi = np.float32(1e-6).view(np.int32), np.float32(2 * args.clamp).view(np.int32)
    x = np.arange(lo, hi, 7, dtype=np.int32).view(np.float32)
    print(f"fit on [0, {args.clamp}]: max relative error {rel:.3g} (float64)")
    print(f"kernel arithmetic: max {ulps(evaluate(x, p, q, args.clamp), x):.3f} float32 ulps")
    print(f"numpy's float32 tanh: max {ulps(np.tanh(x), x):.3f} ulps")
    print("_TANH_P =", tuple(float(c) for c in p))
    print("_TANH_Q =", tuple(float(c) for c in q))
    if args.check:
        from semiasr.semiring import kernels

        same = np.allclose(p, kernels._TANH_P, rtol=1e-12) and np.allclose(
            q, kernels._TANH_Q, rtol=1e-12
        )
        print("kernel constants:", "this fit" if same else "DIFFER from this fit")
        raise SystemExit(0 if same else 1)


if __name__ == "__main__":
    main()
