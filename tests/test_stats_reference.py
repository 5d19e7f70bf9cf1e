"""minsky's own statistics against the field's libraries, on random inputs (issue 29
item 8): Wilson intervals and the exact McNemar test against statsmodels (and scipy's
binomial test), the Student-t CDF against scipy, Bradley–Terry against choix.

minsky keeps its pure-Python implementations (no numerical stack at run time); these
libraries are test dependencies only (the `test` extra, which CI installs: imported plainly,
so a missing one fails rather than skips)."""

from __future__ import annotations

import math
import random

import choix
import pytest
import scipy.stats as scipy_stats
import statsmodels.stats.contingency_tables as contingency
import statsmodels.stats.proportion as proportion
from hypothesis import given
from hypothesis import strategies as st

from minsky.evals.ratings import bradley_terry
from minsky.evals.stats import mcnemar, student_t_cdf, wilson_interval


@given(n=st.integers(1, 5000), share=st.floats(0, 1),
       confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99, 0.999]))
def test_wilson_interval_matches_statsmodels(n: int, share: float, confidence: float) -> None:
    k = round(share * n)
    low, high = proportion.proportion_confint(k, n, alpha=1 - confidence, method="wilson")
    ours = wilson_interval(k, n, confidence)
    assert ours == pytest.approx((low, high), abs=1e-12)


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=400))
def test_exact_mcnemar_matches_statsmodels_and_scipy(pairs: list[tuple[bool, bool]]) -> None:
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    ours = mcnemar(a, b)
    both = sum(x and y for x, y in pairs)
    neither = sum(not x and not y for x, y in pairs)
    # statsmodels' table: rows a right/wrong, columns b right/wrong
    table = [[both, ours.b10], [ours.b01, neither]]
    reference = contingency.mcnemar(table, exact=True).pvalue
    assert ours.p_value == pytest.approx(reference, rel=1e-9, abs=1e-15)
    discordant = ours.b01 + ours.b10
    if discordant:
        # for p = 1/2 the binomial is symmetric, so scipy's "as likely or less" two-sided
        # p-value is the same as doubling the smaller tail
        exact = scipy_stats.binomtest(ours.b01, discordant, 0.5).pvalue
        assert ours.p_value == pytest.approx(exact, rel=1e-9, abs=1e-15)


@given(t=st.floats(-60, 60), df=st.floats(0.2, 2000))
def test_student_t_cdf_matches_scipy(t: float, df: float) -> None:
    reference = float(scipy_stats.t.cdf(t, df))
    ours = student_t_cdf(t, df)
    assert ours == pytest.approx(reference, rel=1e-9, abs=1e-300)
    # the tail is computed directly, so a small p-value keeps its relative precision
    if t < 0:
        assert ours == pytest.approx(float(scipy_stats.t.sf(-t, df)), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("seed", range(12))
def test_bradley_terry_matches_choix(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(2, 7)
    strength = [rng.gauss(0, 1) for _ in range(n)]
    games: list[tuple[str, str, float]] = []
    # each pair trades one win, so the MLE exists (Ford's condition) and minsky adds no
    # prior: both sides then compute the plain maximum-likelihood estimate
    for i in range(n):
        for j in range(i + 1, n):
            games += [(f"p{i}", f"p{j}", 1.0), (f"p{i}", f"p{j}", 0.0)]
    for _ in range(rng.randint(0, 60)):
        i, j = rng.sample(range(n), 2)
        p_i = 1 / (1 + math.exp(strength[j] - strength[i]))
        games.append((f"p{i}", f"p{j}", rng.choice([1.0, 0.0, 0.5]) if rng.random() < 0.2
                      else float(rng.random() < p_i)))
    # choix takes (winner, loser) pairs and knows no ties; minsky counts a tie as half a
    # win for each side. Doubling every game leaves the MLE where it is, so a decisive
    # game is two (winner, loser) pairs and a tie one pair each way.
    data: list[tuple[int, int]] = []
    for a, b, score in games:
        i, j = int(a[1:]), int(b[1:])
        data += {1.0: [(i, j)] * 2, 0.0: [(j, i)] * 2, 0.5: [(i, j), (j, i)]}[score]
    theta = choix.ilsr_pairwise(n, data, alpha=0.0, max_iter=10_000, tol=1e-12)
    ours = bradley_terry(games)
    # choix gives natural-log strengths centred on 0; minsky's ratings are on the Elo
    # scale, 400·log10(p), centred on 1000: rating = 1000 + 400 / ln(10) · θ
    factor = 400 / math.log(10)
    for i in range(n):
        assert ours[f"p{i}"] == pytest.approx(1000 + factor * (theta[i] - theta.mean()),
                                              abs=1e-4)
    # and so the same win probabilities, P(i beats j) = 1 / (1 + 10^((r_j − r_i) / 400))
    for i in range(n):
        for j in range(n):
            mine = 1 / (1 + 10 ** ((ours[f"p{j}"] - ours[f"p{i}"]) / 400))
            theirs = choix.probabilities([i, j], theta)[0]
            assert mine == pytest.approx(theirs, abs=1e-7)
