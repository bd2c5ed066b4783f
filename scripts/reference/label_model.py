#!/usr/bin/env python3
"""Independent reference for src/learn/label_model.rs (Dawid-Skene label model).

Model. K classes, J voters. Each item has a hidden true class y with prior pi_y.
Voter j's output on an item is an outcome o in {abstain} U {0..K-1}, drawn from
its confusion row theta_j[y][o] = P(voter j outputs o | true class y); voters
are independent given y. Outcome index 0 means "abstained", index c + 1 means
"voted class c", as in the Rust module.

Fit (EM, maximum a posteriori):
  * smoothing: Dirichlet pseudo-counts. Every confusion row gets `smoothing`
    in all, spread evenly over its K + 1 outcomes, and the correct outcome
    (o = y + 1) gets `diagonal` more; the prior gets `smoothing` spread over its
    K classes. The M-step is
    theta_j[y][o] = (expected count + pseudo-count) / row total, and the same for pi.
  * initialisation: the first M-step uses the majority-vote distribution of
    each item (ties split evenly) as its posterior; items where everyone
    abstained are left out of that first M-step.
  * iteration: E-step (posteriors and objective under the current parameters),
    then M-step. The objective is the log-likelihood of all items plus
    sum(pseudo-count * log parameter), which EM with this M-step never lowers.
    Stop after `max_iterations` iterations, or as soon as the objective changed
    by at most `tolerance * number of items` since the previous iteration (the
    M-step of the last iteration is kept).
  * accuracy of voter j: sum_y pi_y theta_j[y][y+1] / sum_y pi_y (1 - theta_j[y][abstain]),
    P(vote correct | voter voted).

Unlike the Rust code (sparse votes, abstain counts by subtraction, per-vote
log-ratio tables) this computes everything densely over every (item, voter)
pair, with the plain standard library.

Usage (from the repository root, Python 3.11, no packages needed):
  python3 scripts/reference/label_model.py                  # print the fit
  python3 scripts/reference/label_model.py --write-fixture  # regenerate the JSON
The fixture is tests/fixtures/label_model_votes.json; the Rust unit test
`agrees_with_python_reference` refits its votes and compares.
"""
import json
import math
import os
import random
import sys

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures",
                       "label_model_votes.json")
SEED = 20240611
N_ITEMS = 400
PRIOR = [0.5, 0.3, 0.2]
OPTIONS = {"max_iterations": 1000, "tolerance": 1e-10, "smoothing": 0.1, "diagonal": 0.1}
# Voters of the fixture. ("multi", coverage, accuracy): votes with probability
# `coverage`, right with probability `accuracy`, else a uniformly chosen wrong
# class. ("rule", class, fire_on_class, fire_elsewhere): only ever votes `class`.
VOTERS = [
    ("multi", 0.9, 0.8),
    ("rule", 0, 0.5, 0.1),
    ("rule", 1, 0.6, 0.05),
    ("multi", 0.4, 0.85),
    ("multi", 0.3, 0.6),
]


def draw(rng, weights):
    u, acc = rng.random(), 0.0
    for i, w in enumerate(weights):
        acc += w
        if u < acc:
            return i
    return len(weights) - 1


def simulate(seed=SEED):
    """(truth, votes): votes[i] is a list of [voter, class] pairs of non-abstainers."""
    rng = random.Random(seed)
    k = len(PRIOR)
    truth, votes = [], []
    for _ in range(N_ITEMS):
        y = draw(rng, PRIOR)
        item = []
        for j, spec in enumerate(VOTERS):
            if spec[0] == "multi":
                _, coverage, accuracy = spec
                if rng.random() < coverage:
                    if rng.random() < accuracy:
                        item.append([j, y])
                    else:
                        item.append([j, (y + 1 + int(rng.random() * (k - 1))) % k])
            else:
                _, c, on_class, elsewhere = spec
                if rng.random() < (on_class if y == c else elsewhere):
                    item.append([j, c])
        truth.append(y)
        votes.append(item)
    return truth, votes


def majority(item, k):
    counts = [0] * k
    for _, c in item:
        counts[c] += 1
    top = max(counts)
    if top == 0:
        return None
    ties = counts.count(top)
    return [1.0 / ties if n == top else 0.0 for n in counts]


def dense_outcomes(votes, n_voters):
    out = []
    for item in votes:
        row = [0] * n_voters
        for j, c in item:
            row[j] = c + 1
        out.append(row)
    return out


def pseudo_count(y, o, k, smoothing, diagonal):
    return smoothing / (k + 1) + (diagonal if o == y + 1 else 0.0)


def m_step(outcomes, q, n_voters, k, smoothing, diagonal):
    """q[i] is item i's posterior, or None to leave the item out."""
    class_total = [0.0] * k
    counts = [[[0.0] * (k + 1) for _ in range(k)] for _ in range(n_voters)]
    for row, qi in zip(outcomes, q):
        if qi is None:
            continue
        for y in range(k):
            class_total[y] += qi[y]
            for j in range(n_voters):
                counts[j][y][row[j]] += qi[y]
    total = sum(class_total)
    prior = [(t + smoothing / k) / (total + smoothing) for t in class_total]
    theta = []
    for j in range(n_voters):
        rows = []
        for y in range(k):
            r = [counts[j][y][o] + pseudo_count(y, o, k, smoothing, diagonal)
                 for o in range(k + 1)]
            s = sum(r)
            rows.append([x / s for x in r])
        theta.append(rows)
    return prior, theta


def e_step(outcomes, prior, theta, k, smoothing, diagonal):
    q, loglik = [], 0.0
    for row in outcomes:
        scores = [math.log(prior[y]) + sum(math.log(theta[j][y][o]) for j, o in enumerate(row))
                  for y in range(k)]
        m = max(scores)
        z = sum(math.exp(s - m) for s in scores)
        loglik += m + math.log(z)
        q.append([math.exp(s - m) / z for s in scores])
    penalty = sum(smoothing / k * math.log(p) for p in prior)
    for rows in theta:
        for y, r in enumerate(rows):
            penalty += sum(pseudo_count(y, o, k, smoothing, diagonal) * math.log(t)
                           for o, t in enumerate(r))
    return q, loglik + penalty


def fit(votes, n_voters, k, max_iterations, tolerance, smoothing, diagonal):
    outcomes = dense_outcomes(votes, n_voters)
    q = [majority(item, k) for item in votes]
    prior, theta = m_step(outcomes, q, n_voters, k, smoothing, diagonal)
    previous, iterations = None, 0
    for iteration in range(1, max_iterations + 1):
        q, objective = e_step(outcomes, prior, theta, k, smoothing, diagonal)
        prior, theta = m_step(outcomes, q, n_voters, k, smoothing, diagonal)
        iterations = iteration
        if previous is not None and abs(objective - previous) <= tolerance * len(votes):
            break
        previous = objective
    return prior, theta, iterations


def posterior(item, prior, theta, n_voters, k):
    row = dense_outcomes([item], n_voters)[0]
    scores = [math.log(prior[y]) + sum(math.log(theta[j][y][o]) for j, o in enumerate(row))
              for y in range(k)]
    m = max(scores)
    e = [math.exp(s - m) for s in scores]
    return [x / sum(e) for x in e]


def accuracy(rows, prior):
    right = sum(p * r[y + 1] for y, (p, r) in enumerate(zip(prior, rows)))
    voted = sum(p * sum(r[1:]) for p, r in zip(prior, rows))
    return right / voted


def empirical(truth, votes, n_voters):
    right, voted = [0] * n_voters, [0] * n_voters
    for y, item in zip(truth, votes):
        for j, c in item:
            voted[j] += 1
            right[j] += c == y
    return [r / v for r, v in zip(right, voted)]


def main():
    k, n_voters = len(PRIOR), len(VOTERS)
    truth, votes = simulate()
    prior, theta, iterations = fit(votes, n_voters, k, **OPTIONS)
    accuracies = [accuracy(rows, prior) for rows in theta]
    empty = next(i for i, item in enumerate(votes) if not item)
    picks = [0, 1, 2, 3, 4, empty]
    posteriors = [{"item": i, "posterior": posterior(votes[i], prior, theta, n_voters, k)}
                  for i in picks]
    emp = empirical(truth, votes, n_voters)
    print(f"iterations {iterations}")
    print("prior", " ".join(f"{p:.6f}" for p in prior))
    for j, (a, e) in enumerate(zip(accuracies, emp)):
        print(f"voter {j}: estimated accuracy {a:.6f}  empirical {e:.6f}")
    for p in posteriors:
        print(f"item {p['item']} votes {votes[p['item']]}: posterior",
              " ".join(f"{x:.6f}" for x in p["posterior"]))
    if "--write-fixture" in sys.argv:
        head = {"generator": "scripts/reference/label_model.py --write-fixture", "seed": SEED,
                "n_voters": n_voters, "n_classes": k, "options": OPTIONS,
                "iterations": iterations, "prior": prior, "accuracies": accuracies,
                "posteriors": posteriors}
        lines = [f"  {json.dumps(key)}: {json.dumps(value)}," for key, value in head.items()]
        items = ",\n".join(f"    {json.dumps(item)}" for item in votes)
        with open(FIXTURE, "w") as f:
            f.write("{\n" + "\n".join(lines) + '\n  "votes": [\n' + items + "\n  ]\n}\n")
        print(f"wrote {os.path.normpath(FIXTURE)}")


if __name__ == "__main__":
    main()
