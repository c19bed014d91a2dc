#!/usr/bin/env python3
"""Fits the float GELU's rational tail of core/src/gelu.rs, or checks the one there (--check).

core/src/gelu.rs computes GELU(x) = max(x, 0) - |x| * Phi(-|x|) with the upper-tail probability
Phi(-a) = erfc(a / sqrt 2) / 2 approximated by P(u) / Q(u), u = min(a / 6, 1), P of 7 and Q of 8
coefficients (Q[0] = 1, P[0] = 1/2 = Phi(0) exactly), both evaluated by Horner's rule in f32.

The fit: linearised least squares P(u) - f(u) Q(u) = 0 on 20,001 points of [0, 1], weighted by
min(a, 1) (the GELU's error is |x| times the tail's, scaled by 1/max(1, |x|)) and by 1/|Q|
(Loeb), reweighted by the error (Lawson) towards minimax; then each coefficient is rounded to
f32 in turn and the rest refitted around it. The result is judged as the crate uses it: every
operation in f32, against an f64 exact-erf GELU on 2,000,001 points of [-10, 10].

--check judges the coefficients in core/src/gelu.rs the same way and fails above the bound the
crate states (1.5e-7 * max(1, |x|)). Those coefficients predate this script: a fresh fit meets
the same bound (1.37e-7 when this script was written) with other bits, and replacing them would
change every sample the model draws, so they stay.

Needs NumPy (the virtualenv of scripts/install-torch.sh has it).
"""

import math
import re
import sys
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).resolve().parent.parent / "core/src/gelu.rs"
N_P, N_Q = 7, 8
BOUND = 1.5e-7
U = np.linspace(0.0, 1.0, 20001)
A = 6.0 * U
TAIL = np.array([math.erfc(a / math.sqrt(2)) / 2 for a in A])
WEIGHT = np.maximum(np.minimum(A, 1.0), 1e-3)


def horner(c, u):
    acc = np.full_like(u, c[-1])
    for ci in reversed(c[:-1]):
        acc = acc * u + ci
    return acc


def least_squares(fixed_p, fixed_q, w):
    """P and Q minimising sum (w (P - TAIL Q))^2 with the coefficients in fixed_* held."""
    cols, rhs, names = [], TAIL.copy(), []
    for i in range(N_P):
        if i in fixed_p:
            rhs -= fixed_p[i] * U**i
        else:
            cols.append(U**i)
            names.append(("p", i))
    for j in range(1, N_Q):
        if j in fixed_q:
            rhs += fixed_q[j] * TAIL * U**j
        else:
            cols.append(-TAIL * U**j)
            names.append(("q", j))
    m = np.stack(cols, 1)
    sol, *_ = np.linalg.lstsq(m * w[:, None], rhs * w, rcond=None)
    p, q = dict(fixed_p), dict(fixed_q)
    q[0] = 1.0
    for (kind, i), v in zip(names, sol):
        (p if kind == "p" else q)[i] = v
    return [p[i] for i in range(N_P)], [q[j] for j in range(N_Q)]


def minimax(fixed_p, fixed_q, iters=60):
    loeb, lawson = np.ones_like(U), np.ones_like(U)
    for _ in range(iters):
        p, q = least_squares(fixed_p, fixed_q, WEIGHT * loeb * lawson)
        den = horner(q, U)
        err = np.abs(horner(p, U) / den - TAIL) * WEIGHT
        lawson = lawson * np.sqrt(err / err.max()) + 1e-12
        lawson /= lawson.max()
        loeb = 1 / np.abs(den)
    return p, q


def fit():
    fixed_p, fixed_q = {0: 0.5}, {}
    p, q = minimax(fixed_p, fixed_q)
    for kind, i in [("p", i) for i in range(1, N_P)] + [("q", j) for j in range(1, N_Q)]:
        if kind == "p":
            fixed_p[i] = float(np.float32(p[i]))
        else:
            fixed_q[i] = float(np.float32(q[i]))
        if len(fixed_p) + len(fixed_q) < N_P + N_Q - 1:
            p, q = minimax(fixed_p, fixed_q)
    return [fixed_p[i] for i in range(N_P)], [1.0] + [fixed_q[j] for j in range(1, N_Q)]


def f32_error(p, q):
    """Worst |gelu_f32(x) - GELU(x)| / max(1, |x|) over 2,000,001 points of [-10, 10]."""
    f = np.float32
    p, q = [f(c) for c in p], [f(c) for c in q]
    x = (-10.0 + 20.0 * np.arange(2_000_001) / 2_000_000).astype(f)
    a = np.abs(x)
    u = np.minimum(a * f(1.0 / 6.0), f(1.0))

    def h(c):
        acc = np.full_like(u, c[-1])
        for ci in c[-2::-1]:
            acc = acc * u + ci
        return acc

    gelu = np.maximum(x, f(0.0)) - a * (h(p) / h(q))
    xd = x.astype(np.float64)
    exact = 0.5 * xd * (1 + np.array([math.erf(v / math.sqrt(2)) for v in xd]))
    return float(np.max(np.abs(gelu - exact) / np.maximum(1.0, np.abs(xd))))


def committed():
    text = SOURCE.read_text()

    def array(name):
        body = re.search(rf"const {name}: \[f32; \d+\] = \[(.*?)\];", text, re.S).group(1)
        return [float(v.replace("_", "")) for v in body.split(",") if v.strip()]

    return array("P"), array("Q")


def main():
    if sys.argv[1:] == ["--check"]:
        p, q = committed()
        worst = f32_error(p, q)
        print(f"{SOURCE.name}: GELU worst scaled error {worst:.3e} (bound {BOUND:.1e})")
        if worst > BOUND:
            sys.exit("above the bound the crate states")
    elif sys.argv[1:]:
        sys.exit("usage: scripts/gelu_fit.py [--check]")
    else:
        p, q = fit()
        print("P:", ", ".join(repr(float(np.float32(c))) for c in p))
        print("Q:", ", ".join(repr(float(np.float32(c))) for c in q))
        print(f"f32 GELU worst scaled error {f32_error(p, q):.3e} (bound {BOUND:.1e})")


if __name__ == "__main__":
    main()
