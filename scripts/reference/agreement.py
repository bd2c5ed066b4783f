#!/usr/bin/env python3
"""Reference values for src/quality/agreement.rs (inter-annotator agreement).

Computes, on the fixtures the Rust unit tests check:
  Cohen's kappa      sklearn.metrics.cohen_kappa_score (unweighted)
  Fleiss' kappa      statsmodels.stats.inter_rater.fleiss_kappa(table, method='fleiss')
  Krippendorff alpha krippendorff.alpha(reliability_data=..., level_of_measurement='nominal')
                     (that package takes coders x units; the Rust code takes units x coders)
The "random" fixture lives in tests/fixtures/agreement.json (seed 20240611); it is read
from there, and regenerated only with --write-fixture.

Usage (from the repository root):
  python3 -m venv /tmp/agvenv
  /tmp/agvenv/bin/pip install scikit-learn statsmodels krippendorff numpy
  /tmp/agvenv/bin/python scripts/reference/agreement.py
  /tmp/agvenv/bin/python scripts/reference/agreement.py --write-fixture  # regenerate the JSON
"""
import json
import os
import sys

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "agreement.json")
SEED = 20240611


def write_fixture():
    rng = np.random.default_rng(SEED)
    n_items, n_raters, n_cats = 40, 4, 3
    truth = rng.integers(0, n_cats, n_items)
    # each rater copies the "true" label with prob. 0.7, else picks uniformly
    noise = rng.integers(0, n_cats, (n_items, n_raters))
    keep = rng.random((n_items, n_raters)) < 0.7
    ratings = np.where(keep, truth[:, None], noise)
    missing = rng.random((n_items, n_raters)) < 0.2
    with_missing = [[None if missing[i, j] else int(ratings[i, j]) for j in range(n_raters)]
                    for i in range(n_items)]
    data = {"seed": SEED, "ratings": ratings.tolist(), "ratings_missing": with_missing}
    with open(FIXTURE, "w") as f:
        json.dump(data, f)
        f.write("\n")


def alpha(units):
    """Nominal alpha of units x coders data (None = missing)."""
    data = np.array([[np.nan if v is None else v for v in row] for row in units], dtype=float)
    return krippendorff.alpha(reliability_data=data.T, level_of_measurement="nominal")


def fleiss(units):
    """Fleiss' kappa of complete units x raters integer labels."""
    table, _ = aggregate_raters(np.array(units))
    return fleiss_kappa(table, method="fleiss")


def pairwise(units):
    """Cohen's kappa for each coder pair over the units both coded: (i, j, kappa, n)."""
    out = []
    k = len(units[0])
    for i in range(k):
        for j in range(i + 1, k):
            both = [(u[i], u[j]) for u in units if u[i] is not None and u[j] is not None]
            if both:
                a, b = zip(*both)
                out.append((i, j, cohen_kappa_score(a, b), len(both)))
    return out


def token_labels(text, spans):
    """Per whitespace token: label of the first span overlapping it (char offsets), else 'O'."""
    labels, pos = [], 0
    for word in text.split():
        start = text.index(word, pos)
        end = start + len(word)
        pos = end
        hit = [lab for (s, e, lab) in spans if s < end and start < e]
        labels.append(hit[0] if hit else "O")
    return labels


def main():
    if "--write-fixture" in sys.argv or not os.path.exists(FIXTURE):
        write_fixture()
    with open(FIXTURE) as f:
        fx = json.load(f)

    # 1. hand-checkable: 10 items, 2 raters, 3 labels.
    hand = [[0, 0], [0, 0], [0, 1], [1, 1], [1, 1], [1, 2], [2, 2], [2, 2], [0, 0], [1, 0]]
    # 2. missing values: Krippendorff (2011) "Computing Krippendorff's alpha" nominal
    #    example, 4 coders x 12 units, given here as units x coders.
    kd = [[1, 1, None, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2],
          [1, 2, 3, 4], [4, 4, 4, 4], [1, 1, 2, 1], [2, 2, 2, 2], [None, 5, 5, 5],
          [None, None, 1, 1], [None, 3, None, None]]
    # 3. perfect agreement, 3 raters.
    perfect = [[0, 0, 0], [1, 1, 1], [2, 2, 2], [1, 1, 1], [0, 0, 0]]
    # 4. larger random (fixture file).
    rand, rand_missing = fx["ratings"], fx["ratings_missing"]
    # 5. label 2 used by the first rater only.
    onesided = [[0, 0], [1, 1], [2, 0], [2, 1], [0, 0], [1, 1], [0, 1], [2, 0]]

    print(f"fixture: {os.path.normpath(FIXTURE)} (seed {fx['seed']})")
    for name, units in [("hand", hand), ("perfect", perfect), ("random", rand),
                        ("onesided", onesided)]:
        a = [u[0] for u in units]
        b = [u[1] for u in units]
        print(f"{name}: cohen(r0,r1)={cohen_kappa_score(a, b):.12f} "
              f"fleiss={fleiss(units):.12f} alpha={alpha(units):.12f}")
    print(f"kd2011: alpha={alpha(kd):.12f}")
    for i, j, k, n in pairwise(kd):
        print(f"kd2011: pairwise cohen ({i},{j}) kappa={k:.12f} n={n}")
    print(f"random_missing: alpha={alpha(rand_missing):.12f}")

    # NER: token-level alpha between two annotators (labels as ints for the package).
    text = "Ada  Lovelace met Charles Babbage in London in 1833 ."
    ann_a = [(0, 13, "PER"), (18, 33, "PER"), (37, 43, "LOC")]
    ann_b = [(0, 13, "PER"), (18, 25, "PER"), (37, 43, "ORG"), (47, 51, "DATE")]
    ta, tb = token_labels(text, ann_a), token_labels(text, ann_b)
    ids = {lab: n for n, lab in enumerate(sorted(set(ta) | set(tb)))}
    units = [[ids[x], ids[y]] for x, y in zip(ta, tb)]
    print(f"ner: tokens_a={ta}")
    print(f"ner: tokens_b={tb}")
    print(f"ner: token_alpha={alpha(units):.12f}")

    # Undefined cases (the Rust functions return None for all of these).
    import warnings
    warnings.simplefilter("ignore")
    print(f"undefined: cohen all one label = {cohen_kappa_score([1, 1, 1], [1, 1, 1])}")
    print(f"undefined: fleiss one category = {fleiss_kappa(np.array([[3, 0], [3, 0]]))}")
    print(f"undefined: alpha value only in unpairable unit = {alpha([[1, 1], [2, None]])}")
    try:
        alpha([[1, 1], [1, None]])
    except ValueError as e:
        print(f"undefined: alpha one value raises ValueError: {e}")


if __name__ == "__main__":
    main()
