#!/usr/bin/env python3
"""Independent reference for src/quality/ranking.rs::bradley_terry.

Fits the same regularised Bradley-Terry objective with scipy's L-BFGS-B on the
negative log-likelihood (not the Newton iteration the Rust code uses) and prints
centred log-strengths for the fixtures the Rust unit tests check.

Objective (maximised), theta = log-strengths, sigma = logistic function:
  sum over votes  s*log sigma(th_a - th_b) + (1-s)*log sigma(th_b - th_a)
  + sum over sources 0.5*log sigma(th_i) + 0.5*log sigma(-th_i)
The second line is one virtual tie per source against an opponent of strength 0
(a log-F(1,1) prior). Strengths are then centred to mean 0 over the sources that
appear in at least one vote; sources with no votes stay at exactly 0.

Usage (from the repository root):
  python3 -m venv /tmp/btvenv && /tmp/btvenv/bin/pip install numpy scipy
  /tmp/btvenv/bin/python scripts/reference/bradley_terry.py
  /tmp/btvenv/bin/python scripts/reference/bradley_terry.py --write-fixture  # regenerate the JSON
"""
import json
import os
import sys

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_expit, expit

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "bt_votes.json")


def neg_log_lik(theta, votes):
    a, b, s = votes[:, 0].astype(int), votes[:, 1].astype(int), votes[:, 2]
    d = theta[a] - theta[b]
    f = -(s * log_expit(d) + (1 - s) * log_expit(-d)).sum()
    f -= 0.5 * (log_expit(theta) + log_expit(-theta)).sum()
    # d/dd [s log sig(d) + (1-s) log sig(-d)] = s - sig(d)
    r = s - expit(d)
    grad = np.zeros_like(theta)
    np.add.at(grad, a, -r)
    np.add.at(grad, b, r)
    grad -= 0.5 - expit(theta)
    return f, grad


def fit(n, votes):
    votes = np.asarray(votes, dtype=float).reshape(-1, 3)
    res = minimize(neg_log_lik, np.zeros(n), args=(votes,), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-12, "ftol": 1e-16, "maxiter": 10000})
    assert np.abs(res.jac).max() < 1e-7, res
    played = np.zeros(n, dtype=bool)
    played[votes[:, 0].astype(int)] = played[votes[:, 1].astype(int)] = True
    theta = np.where(played, res.x - res.x[played].mean(), 0.0)
    return theta


def parse(s):
    """Votes as "0>1" (0 beats 1), "0<1" (1 beats 0) or "0=1" (tie), like the Rust tests."""
    out = []
    for v in s.split():
        op = next(c for c in "><=" if c in v)
        a, b = v.split(op)
        out.append((int(a), int(b), {">": 1.0, "<": 0.0, "=": 0.5}[op]))
    return out


# Hand-checkable: 3 sources, 0 beats 1 2-1, 1 beats 2 2-1, 0 beats 2 2-0.
SMALL = "0>1 0>1 0<1 1>2 1>2 1<2 0>2 0>2"
# 5 sources: 0 never loses (wins and ties), 3 never wins, 4 has no votes.
TIES = "0>1 0=1 2=0 0>2 0>3 1=2 1>2 2>1 3<1 2>3 3=2"


def write_fixture(seed=20240611, n=6, m=300):
    rng = np.random.default_rng(seed)
    true = [1.0, 0.5, 0.2, 0.0, -0.4, -1.3]
    votes = []
    for _ in range(m):
        a, b = (int(x) for x in rng.choice(n, size=2, replace=False))
        p = expit(true[a] - true[b])
        s = 0.5 if rng.random() < 0.12 else float(rng.random() < p)
        votes.append([a, b, s])
    lines = ",\n".join("    " + json.dumps(v) for v in votes)
    with open(FIXTURE, "w") as f:
        f.write(f'{{\n  "n": {n},\n  "seed": {seed},\n  "true_strength": {json.dumps(true)},\n'
                f'  "generator": "scripts/reference/bradley_terry.py --write-fixture",\n'
                f'  "votes": [\n{lines}\n  ]\n}}\n')


def main():
    if "--write-fixture" in sys.argv:
        write_fixture()
    with open(FIXTURE) as f:
        fx = json.load(f)
    fixtures = [("two", (2, parse("0>1"))), ("small", (3, parse(SMALL))), ("ties", (5, parse(TIES))),
                ("random", (fx["n"], fx["votes"]))]
    for name, (n, votes) in fixtures:
        theta = fit(n, votes)
        print(f"{name} ({len(votes)} votes): [{', '.join(f'{t:.6f}' for t in theta)}]")


if __name__ == "__main__":
    main()
