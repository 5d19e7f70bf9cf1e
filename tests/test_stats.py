"""Tests for minsky.evals.stats against hand-computed values, closed forms and numpy references."""

from __future__ import annotations

import math
import random
from statistics import NormalDist, fmean

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minsky.evals.ratings import bootstrap_ratings, bradley_terry, elo_ratings
from minsky.evals.stats import (
    McNemar,
    bootstrap_interval,
    length_bias,
    mcnemar,
    paired_bootstrap,
    permutation_test,
    regularized_beta,
    sharded_permutation_test,
    student_t_cdf,
    wilson_interval,
)

ELO = 400 / math.log(10)  # rating points per unit of natural log-strength


# --------------------------------------------------------------------------- Wilson


def test_wilson_8_of_10_by_hand() -> None:
    # z = 1.959964, z² = 3.841459, p = 0.8, n = 10:
    # centre = (0.8 + z²/20) / (1 + z²/10) = 0.992073 / 1.384146 = 0.716738
    # half   = z/(1 + z²/10) · sqrt(0.8·0.2/10 + z²/400)
    #        = 1.416010 · sqrt(0.016 + 0.009604) = 1.416010 · 0.160011 = 0.226578
    # interval = (0.490160, 0.943316)
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)
    z = NormalDist().inv_cdf(0.975)
    centre = (0.8 + z * z / 20) / (1 + z * z / 10)
    half = z / (1 + z * z / 10) * math.sqrt(0.016 + z * z / 400)
    assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-12)


def test_wilson_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    # at p = 0 the upper end is z²/(n + z²)
    z2 = NormalDist().inv_cdf(0.975) ** 2
    assert high == pytest.approx(z2 / (10 + z2), abs=1e-12)
    low, high = wilson_interval(10, 10)
    assert high == 1.0
    assert low == pytest.approx(10 / (10 + z2), abs=1e-12)
    # a higher confidence gives a wider interval
    l90, h90 = wilson_interval(8, 10, 0.90)
    l99, h99 = wilson_interval(8, 10, 0.99)
    assert l99 < l90 and h99 > h90


@pytest.mark.parametrize("args", [(11, 10), (-1, 10), (1, -1), (5, 10, 1.0), (5, 10, 0.0)])
def test_wilson_rejects_bad_input(args: tuple) -> None:
    with pytest.raises(ValueError):
        wilson_interval(*args)


@given(st.integers(1, 10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       st.floats(0.5, 0.999))
def test_wilson_contains_estimate_and_stays_in_unit_interval(
    case: tuple[int, int], confidence: float
) -> None:
    successes, n = case
    low, high = wilson_interval(successes, n, confidence)
    assert 0.0 <= low <= successes / n <= high <= 1.0


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_interval_of_the_mean_matches_normal_theory() -> None:
    values = list(range(100))
    low, high = bootstrap_interval(values, n_boot=4000, seed=1)
    # standard error of the mean: sqrt(population variance / n) = sqrt(833.25 / 100)
    se = math.sqrt((100**2 - 1) / 12 / 100)
    assert low == pytest.approx(49.5 - 1.96 * se, abs=0.6)
    assert high == pytest.approx(49.5 + 1.96 * se, abs=0.6)


def test_bootstrap_interval_is_deterministic_and_matches_numpy_percentiles() -> None:
    values = [0.1, 0.5, 0.2, 0.9, 0.4, 0.3]
    assert bootstrap_interval(values, seed=3) == bootstrap_interval(values, seed=3)
    assert bootstrap_interval(values, seed=3) != bootstrap_interval(values, seed=4)
    # the same resamples, rebuilt here, with numpy's (linear) percentiles
    rng = random.Random(3)
    means = [fmean(rng.choices(values, k=len(values))) for _ in range(2000)]
    expected = np.percentile(means, [2.5, 97.5])
    assert bootstrap_interval(values, seed=3) == pytest.approx(tuple(expected), abs=1e-12)


def test_bootstrap_interval_other_statistic_and_constant_data() -> None:
    assert bootstrap_interval([2.0] * 7) == (2.0, 2.0)
    low, high = bootstrap_interval([1, 2, 3, 100], stat=max, seed=0)
    # the maximum of a resample is one of the values; a quarter of resamples miss 100
    # only with probability (3/4)^4 = 0.32, so the upper end is 100
    assert 1 <= low <= high == 100
    with pytest.raises(ValueError):
        bootstrap_interval([])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30), st.integers(0, 2**32),
       st.floats(0.5, 0.99))
def test_bootstrap_interval_is_ordered(values: list[float], seed: int, conf: float) -> None:
    low, high = bootstrap_interval(values, n_boot=200, confidence=conf, seed=seed)
    assert low <= high
    assert min(values) - 1e-6 <= low and high <= max(values) + 1e-6


def test_paired_bootstrap() -> None:
    a = [0.0, 1.0, 0.0, 1.0, 0.5]
    shifted = paired_bootstrap(a, [x + 1 for x in a])
    assert shifted["mean_diff"] == pytest.approx(1.0)
    assert shifted["low"] == pytest.approx(1.0) and shifted["high"] == pytest.approx(1.0)
    assert shifted["share_le_zero"] == 0.0
    assert shifted["n"] == 5
    worse = paired_bootstrap(a, [x - 1 for x in a])
    assert worse["share_le_zero"] == 1.0
    r = paired_bootstrap([0, 0, 1, 1, 0], [1, 1, 1, 1, 0], seed=5)
    assert r["mean_diff"] == pytest.approx(0.4)
    assert r["low"] <= r["mean_diff"] <= r["high"]
    assert 0.0 < r["share_le_zero"] < 0.5
    assert r == paired_bootstrap([0, 0, 1, 1, 0], [1, 1, 1, 1, 0], seed=5)
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0, 2.0])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(-10, 10), st.floats(-10, 10)), min_size=1, max_size=20),
       st.integers(0, 1000))
def test_paired_bootstrap_interval_is_ordered(pairs: list[tuple[float, float]], seed: int) -> None:
    r = paired_bootstrap([p[0] for p in pairs], [p[1] for p in pairs], n_boot=200, seed=seed)
    assert r["low"] <= r["high"]
    assert 0.0 <= r["share_le_zero"] <= 1.0


# --------------------------------------------------------------------------- McNemar


def test_mcnemar_exact_by_hand() -> None:
    # b01 = 1, b10 = 9: p = 2·P[X <= 1], X ~ Bin(10, 1/2) = 2·(1 + 10)/1024 = 0.021484375
    a = [False] + [True] * 9 + [True] * 3 + [False] * 2
    b = [True] + [False] * 9 + [True] * 3 + [False] * 2
    r = mcnemar(a, b)
    assert (r.b01, r.b10, r.n) == (1, 9, 15)
    assert r.p_value == 0.021484375
    assert r.difference == pytest.approx((1 - 9) / 15)
    assert r.to_dict() == {"n": 15, "b01": 1, "b10": 9, "difference": r.difference,
                           "p_value": 0.021484375}
    assert isinstance(r, McNemar)
    with pytest.raises(AttributeError):
        r.p_value = 0.5  # type: ignore[misc]


def test_mcnemar_more_hand_values() -> None:
    # b01 = 0, b10 = 5: 2 · (1/32) = 0.0625
    assert mcnemar([True] * 5, [False] * 5).p_value == 0.0625
    # b01 = 2, b10 = 6: 2 · (1 + 8 + 28)/256 = 74/256
    r = mcnemar([False] * 2 + [True] * 6, [True] * 2 + [False] * 6)
    assert r.p_value == pytest.approx(74 / 256)
    # balanced discordance: 2·P[X <= 3] > 1 for Bin(6, 1/2), clipped to 1
    assert mcnemar([False] * 3 + [True] * 3, [True] * 3 + [False] * 3).p_value == 1.0
    # no discordant cases: no evidence
    none = mcnemar([True, False], [True, False])
    assert (none.p_value, none.difference) == (1.0, 0.0)
    assert mcnemar([], []).p_value == 1.0
    # huge counts stay exact and finite: 2 · P[X <= 0] for Bin(2000, 1/2) = 2^-1999
    assert mcnemar([True] * 2000, [False] * 2000).p_value == 2.0**-1999


def test_mcnemar_rejects_unequal_lengths() -> None:
    with pytest.raises(ValueError):
        mcnemar([True, False], [True])


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=200))
def test_mcnemar_p_in_unit_interval_and_symmetric(pairs: list[tuple[bool, bool]]) -> None:
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    ab, ba = mcnemar(a, b), mcnemar(b, a)
    assert 0.0 <= ab.p_value <= 1.0
    assert ab.p_value == ba.p_value
    assert (ab.b01, ab.b10) == (ba.b10, ba.b01)
    assert ab.difference == pytest.approx(-ba.difference)
    acc_a = sum(a) / len(a) if a else 0.0
    acc_b = sum(b) / len(b) if b else 0.0
    assert ab.difference == pytest.approx(acc_b - acc_a)


# --------------------------------------------------------------------------- Elo


def test_elo_one_game() -> None:
    # equal ratings: expected score 0.5, so the winner gains 32 · 0.5 = 16
    assert elo_ratings([("A", "B", 1)]) == {"A": 1016.0, "B": 984.0}
    assert elo_ratings([("A", "B", 0.5)]) == {"A": 1000.0, "B": 1000.0}
    assert elo_ratings([("A", "B", 0)], k=16, base=1500) == {"A": 1492.0, "B": 1508.0}


def test_elo_two_games_by_hand() -> None:
    # after A beats B: 1016 / 984. Then B beats A:
    # E_B = 1 / (1 + 10^((1016 − 984)/400)) = 1 / (1 + 1.2022644) = 0.4540780
    # B = 984 + 32 · (1 − 0.4540780) = 1001.469502, A = 1016 − 17.469502 = 998.530498
    r = elo_ratings([("A", "B", 1), ("B", "A", 1)])
    e_b = 1 / (1 + 10**0.08)
    assert r["B"] == pytest.approx(984 + 32 * (1 - e_b), abs=1e-9)
    assert r["B"] == pytest.approx(1001.469502, abs=1e-6)
    assert r["A"] == pytest.approx(998.530498, abs=1e-6)


def test_elo_rejects_bad_games() -> None:
    with pytest.raises(ValueError):
        elo_ratings([("A", "A", 1)])
    with pytest.raises(ValueError):
        elo_ratings([("A", "B", 2)])


games_strategy = st.lists(
    st.tuples(st.sampled_from("ABCDE"), st.sampled_from("ABCDE"), st.sampled_from([0, 0.5, 1]))
    .filter(lambda g: g[0] != g[1]),
    min_size=1,
    max_size=40,
)


@given(games_strategy)
def test_elo_conserves_the_mean(games: list[tuple[str, str, float]]) -> None:
    r = elo_ratings(games)
    assert fmean(r.values()) == pytest.approx(1000.0)


# --------------------------------------------------------------------------- Bradley–Terry


def reference_bt(
    games: list[tuple[str, str, float]], virtual: frozenset[str] | set[str] = frozenset()
) -> dict[str, float]:
    """Direct Newton maximisation of the BT log-likelihood, game by game, with numpy.

    ℓ(θ) = Σ_games s·log σ(θ_a − θ_b) + (1 − s)·log σ(θ_b − θ_a), plus for each player in
    `virtual` a tie against an opponent fixed at θ = 0. Without virtual games θ_0 is held
    at 0 (the likelihood only fixes differences). Returned on the Elo scale, mean 1000.
    """
    players = sorted({g[0] for g in games} | {g[1] for g in games})
    idx = {p: i for i, p in enumerate(players)}
    n = len(players)
    games_ = [(idx[a], idx[b], s) for a, b, s in games]
    games_ += [(idx[p], None, 0.5) for p in virtual]

    def sig(x: float) -> float:
        return 1 / (1 + np.exp(-x))

    def loglik(theta: np.ndarray) -> float:
        total = 0.0
        for i, j, s in games_:
            d = theta[i] - (0.0 if j is None else theta[j])
            total += s * np.log(sig(d)) + (1 - s) * np.log(sig(-d))
        return total

    theta = np.zeros(n)
    free = list(range(n)) if virtual else list(range(1, n))
    for _ in range(200):
        grad = np.zeros(n)
        hess = np.zeros((n, n))
        for i, j, s in games_:
            d = theta[i] - (0.0 if j is None else theta[j])
            q = sig(d)
            grad[i] += s - q
            hess[i, i] -= q * (1 - q)
            if j is not None:
                grad[j] -= s - q
                hess[j, j] -= q * (1 - q)
                hess[i, j] += q * (1 - q)
                hess[j, i] += q * (1 - q)
        step = np.linalg.solve(hess[np.ix_(free, free)], -grad[free])
        # halve the step until the likelihood does not fall (plain Newton can overshoot)
        t = 1.0
        while True:
            trial = theta.copy()
            trial[free] += t * step
            if loglik(trial) >= loglik(theta) - 1e-12 or t < 1e-8:
                break
            t /= 2
        theta = trial
        if np.max(np.abs(t * step)) < 1e-13:
            break
    theta -= theta.mean()
    return {p: 1000 + ELO * theta[i] for p, i in idx.items()}


def test_bt_two_players_three_to_one() -> None:
    # ℓ = 3 log(p_A/(p_A+p_B)) + log(p_B/(p_A+p_B)) is maximised at p_A/p_B = 3,
    # so the rating gap is 400·log10(3) = 190.8485
    r = bradley_terry([("A", "B", 1)] * 3 + [("B", "A", 1)])
    assert r["A"] - r["B"] == pytest.approx(400 * math.log10(3), abs=1e-9)
    assert r["A"] - r["B"] == pytest.approx(190.85, abs=0.01)
    assert fmean(r.values()) == pytest.approx(1000.0)
    # reversed roles of a and b in the tuples give the same answer
    r2 = bradley_terry([("B", "A", 0)] * 3 + [("A", "B", 0)])
    assert r2 == pytest.approx(r)


def test_bt_ties_count_half() -> None:
    # one win for A and two ties: W_A = 2, W_B = 1, so p_A/p_B = 2 → gap 400·log10(2)
    r = bradley_terry([("A", "B", 1), ("A", "B", 0.5), ("B", "A", 0.5)])
    assert r["A"] - r["B"] == pytest.approx(400 * math.log10(2), abs=1e-9)
    assert bradley_terry([("A", "B", 0.5)]) == {"A": 1000.0, "B": 1000.0}


def test_bt_three_players_matches_direct_maximisation() -> None:
    games = (
        [("A", "B", 1)] * 5 + [("B", "A", 1)] * 2 + [("A", "B", 0.5)]
        + [("B", "C", 1)] * 4 + [("C", "B", 1)] * 3
        + [("C", "A", 1)] * 2 + [("A", "C", 1)] * 6 + [("C", "A", 0.5)] * 2
    )
    ours = bradley_terry(games)
    ref = reference_bt(games)
    assert set(ours) == {"A", "B", "C"}
    for p in ref:
        assert ours[p] == pytest.approx(ref[p], abs=1e-6)
    assert ours["A"] > ours["B"] > ours["C"]


def test_bt_unbalanced_table_matches_direct_maximisation() -> None:
    # strengths far apart: plain MM is slow here; the result must still be the MLE
    games = [("A", "B", 1)] * 60 + [("B", "A", 1)] + [("B", "C", 1)] * 40 + [("C", "B", 1)]
    games += [("A", "C", 1)] * 10 + [("C", "A", 0.5)] + [("D", "C", 1)] * 3 + [("C", "D", 1)]
    ours = bradley_terry(games)
    ref = reference_bt(games)
    for p in ref:
        assert ours[p] == pytest.approx(ref[p], abs=1e-6)


def test_bt_prior_for_an_unbeaten_player() -> None:
    # A never lost: without a prior p_A → ∞. A (zero losses) gets one virtual tie with an
    # opponent of strength 1. B and C trade wins but never took a point from A, so the
    # group {B, C} lost everything to the rest and gets the prior as well.
    games = [("A", "B", 1)] * 2 + [("A", "C", 1)] + [("B", "C", 1), ("C", "B", 1)]
    ours = bradley_terry(games)
    assert all(math.isfinite(v) for v in ours.values())
    assert ours["A"] > ours["B"] and ours["A"] > ours["C"]
    ref = reference_bt(games, virtual={"A", "B", "C"})
    for p in ref:
        assert ours[p] == pytest.approx(ref[p], abs=1e-6)


def test_bt_prior_for_a_player_who_won_everything() -> None:
    # A beat B once. Both get the virtual tie: maximise
    # log σ(a − b) + ½ log σ(a) + ½ log σ(−a) + ½ log σ(b) + ½ log σ(−b); by symmetry b = −a
    # and the condition is σ(−2a) = σ(a) − ½, solved here by bisection.
    r = bradley_terry([("A", "B", 1)])
    lo, hi = 0.0, 10.0
    for _ in range(200):
        mid = (lo + hi) / 2
        f = 1 / (1 + math.exp(2 * mid)) - (1 / (1 + math.exp(-mid)) - 0.5)
        lo, hi = (mid, hi) if f > 0 else (lo, mid)
    assert r["A"] == pytest.approx(1000 + ELO * lo, abs=1e-6)
    assert r["B"] == pytest.approx(1000 - ELO * lo, abs=1e-6)


def test_bt_a_group_that_beat_everyone_gets_the_prior() -> None:
    # A and B trade wins and both always beat C: a prior on C alone would not make the MLE
    # exist (A and B would still run away from C), so {A, B} gets it too.
    games = [("A", "B", 1), ("B", "A", 1), ("A", "C", 1), ("B", "C", 1)] * 3
    r = bradley_terry(games)
    assert r["A"] == pytest.approx(r["B"])
    assert r["C"] < r["A"]
    assert all(math.isfinite(v) for v in r.values())
    ref = reference_bt(games, virtual={"A", "B", "C"})
    for p in ref:
        assert r[p] == pytest.approx(ref[p], abs=1e-6)


def test_bt_separate_groups_are_each_centred() -> None:
    games = [("A", "B", 1)] * 3 + [("B", "A", 1)] + [("X", "Y", 1), ("Y", "X", 1)]
    r = bradley_terry(games)
    assert set(r) == {"A", "B", "X", "Y"}
    assert (r["A"] + r["B"]) / 2 == pytest.approx(1000)
    assert r["X"] == pytest.approx(1000) and r["Y"] == pytest.approx(1000)
    assert bradley_terry([]) == {}


@settings(max_examples=40, deadline=None)
@given(games_strategy, st.randoms(use_true_random=False))
def test_bt_invariant_to_game_order(games: list[tuple[str, str, float]], rnd: random.Random
                                    ) -> None:
    shuffled = list(games)
    rnd.shuffle(shuffled)
    r1, r2 = bradley_terry(games), bradley_terry(shuffled)
    assert set(r1) == set(r2) == {g[0] for g in games} | {g[1] for g in games}
    for p in r1:
        assert math.isfinite(r1[p])
        assert r1[p] == pytest.approx(r2[p], abs=1e-6)


# --------------------------------------------------------------------------- rating intervals


def test_bootstrap_ratings() -> None:
    games = [("A", "B", 1)] * 6 + [("B", "A", 1)] * 2 + [("B", "C", 1)] * 5 + [("C", "B", 1)] * 3
    games += [("A", "C", 1)] * 4 + [("C", "A", 0.5)]
    point = bradley_terry(games)
    ci = bootstrap_ratings(games, n_boot=100, seed=2)
    assert set(ci) == set(point)
    for p, (low, high) in ci.items():
        assert low <= high
        assert low - 1 <= point[p] <= high + 1
    assert ci == bootstrap_ratings(games, n_boot=100, seed=2)
    elo_ci = bootstrap_ratings(games, fit=elo_ratings, n_boot=50, seed=2)
    assert all(low <= high for low, high in elo_ci.values())


@settings(max_examples=15, deadline=None)
@given(games_strategy, st.integers(0, 1000))
def test_bootstrap_ratings_ordered(games: list[tuple[str, str, float]], seed: int) -> None:
    for low, high in bootstrap_ratings(games, n_boot=20, seed=seed).values():
        assert low <= high


# --------------------------------------------------------------------------- Student t


def test_t_cdf_known_values() -> None:
    assert 1 - student_t_cdf(2.0, 5) == pytest.approx(0.05097, abs=1e-5)
    assert student_t_cdf(-2.0, 5) == pytest.approx(0.0509697394, abs=1e-9)
    assert 1 - student_t_cdf(1.0, 1) == pytest.approx(0.25, abs=1e-12)
    assert student_t_cdf(0.0, 7) == 0.5
    # the two-sided 5 % critical value for df = 10 is 2.228139
    assert student_t_cdf(-2.228139, 10) == pytest.approx(0.025, abs=1e-6)
    # large df → the normal distribution
    assert student_t_cdf(1.96, 1e7) == pytest.approx(NormalDist().cdf(1.96), abs=1e-6)
    assert student_t_cdf(math.inf, 3) == 1.0 and student_t_cdf(-math.inf, 3) == 0.0
    # far tail keeps its precision: df = 1 is Cauchy, P[T < −t] = atan(1/t)/π
    assert student_t_cdf(-1e6, 1) == pytest.approx(math.atan(1e-6) / math.pi, rel=1e-9)
    with pytest.raises(ValueError):
        student_t_cdf(1.0, 0)


@pytest.mark.parametrize("df", [1, 2, 3, 5, 12, 30])
@pytest.mark.parametrize("t", [-3.0, -1.2, 0.4, 2.5])
def test_t_cdf_matches_numerical_integration(t: float, df: int) -> None:
    # integrate the density from 0 to t with numpy's trapezoid rule on a fine grid
    x = np.linspace(0.0, t, 200_001)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    pdf = np.exp(log_c - (df + 1) / 2 * np.log1p(x * x / df))
    integral = float(np.sum((pdf[1:] + pdf[:-1]) / 2 * np.diff(x)))
    assert student_t_cdf(t, df) == pytest.approx(0.5 + integral, abs=1e-9)


@given(st.floats(-1e3, 1e3))
def test_t_cdf_closed_forms(t: float) -> None:
    # df = 1: 1/2 + atan(t)/π; df = 2: 1/2 + t / (2·sqrt(2 + t²))
    assert student_t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)
    assert student_t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)
    assert student_t_cdf(t, 4.5) + student_t_cdf(-t, 4.5) == pytest.approx(1.0, abs=1e-12)


@given(st.floats(1e-6, 1 - 1e-6), st.floats(0.1, 50))
def test_regularized_beta_closed_forms(x: float, a: float) -> None:
    # I_x(a, 1) = x^a and I_x(1, b) = 1 − (1 − x)^b
    assert regularized_beta(x, a, 1.0) == pytest.approx(x**a, rel=1e-9, abs=1e-300)
    assert regularized_beta(x, 1.0, a) == pytest.approx(1 - (1 - x) ** a, rel=1e-9, abs=1e-15)


# --------------------------------------------------------------------------- permutation tests


def test_permutation_test_by_hand() -> None:
    assert permutation_test(5.0, [1.0, 2.0, 3.0]) == 1 / 4
    assert permutation_test(5.0, [5.0, 6.0, 1.0]) == 3 / 4  # ties count against
    assert permutation_test(-1.0, [0.0, 0.0]) == 1.0
    assert permutation_test(0.0, []) == 1.0
    assert permutation_test(10.0, [0.0] * 99) == 0.01


@given(st.floats(-100, 100), st.lists(st.floats(-100, 100), max_size=50))
def test_permutation_test_bounds(canonical: float, shuffled: list[float]) -> None:
    p = permutation_test(canonical, shuffled)
    assert 1 / (1 + len(shuffled)) <= p <= 1.0


def test_sharded_test_by_hand() -> None:
    # differences: 1 − 0.25 = 0.75, 2 − 1.1 = 0.9, 3 − 2.25 = 0.75; mean 0.8;
    # sample sd = sqrt((0.05² + 0.1² + 0.05²)/2) = sqrt(0.0075); t = 0.8/(sd/√3) = 16;
    # df = 2, and for df = 2, P[T > t] = 1/2 − t/(2·sqrt(2 + t²)) = 1/2 − 8/sqrt(258)
    r = sharded_permutation_test([1.0, 2.0, 3.0], [[0.0, 0.5], [1.0, 1.2], [2.5, 2.0]])
    assert r["differences"] == pytest.approx([0.75, 0.9, 0.75])
    assert r["mean_difference"] == pytest.approx(0.8)
    assert r["t"] == pytest.approx(16.0)
    assert r["df"] == 2
    assert r["p_value"] == pytest.approx(0.5 - 8 / math.sqrt(258), rel=1e-9)
    assert r["shard_p_values"] == [1 / 3, 1 / 3, 1 / 3]
    assert r["shards"] == 3


def test_sharded_test_matches_t_cdf_and_degenerate_cases() -> None:
    rng = random.Random(0)
    canon = [rng.gauss(0.3, 1) for _ in range(6)]
    shuf = [[rng.gauss(0, 1) for _ in range(4)] for _ in range(6)]
    r = sharded_permutation_test(canon, shuf)
    d = np.array(canon) - np.array([np.mean(s) for s in shuf])
    t = d.mean() / (d.std(ddof=1) / math.sqrt(6))
    assert r["t"] == pytest.approx(t)
    assert r["p_value"] == pytest.approx(1 - student_t_cdf(t, 5))
    # all differences equal: no spread
    assert sharded_permutation_test([1, 1], [[0], [0]])["p_value"] == 0.0
    assert sharded_permutation_test([0, 0], [[1], [1]])["p_value"] == 1.0
    assert sharded_permutation_test([0, 0], [[0], [0]])["p_value"] == 1.0
    with pytest.raises(ValueError):
        sharded_permutation_test([1.0], [[0.0]])
    with pytest.raises(ValueError):
        sharded_permutation_test([1.0, 2.0], [[0.0]])
    with pytest.raises(ValueError):
        sharded_permutation_test([1.0, 2.0], [[0.0], []])


# --------------------------------------------------------------------------- length bias


def test_length_bias_by_hand() -> None:
    pairs = [
        (10, 5, 1),    # longer (a) won
        (10, 5, 0),    # shorter (b) won
        (3, 9, 0),     # longer (b) won
        (4, 4, 1),     # equal lengths: skipped
        (1, 2, 0.5),   # tie: skipped
        (20, 2, 1.0),  # longer won
    ]
    r = length_bias(pairs)
    assert (r["decisive"], r["longer_won"], r["ties"], r["equal_length"]) == (4, 3, 1, 1)
    assert r["share"] == 0.75
    assert (r["low"], r["high"]) == wilson_interval(3, 4)
    # exact sign test: 2 · P[X <= 1], X ~ Bin(4, 1/2) = 2 · 5/16
    assert r["p_value"] == pytest.approx(10 / 16)


def test_length_bias_without_decisive_games() -> None:
    r = length_bias([(3, 3, 1), (1, 5, 0.5)])
    assert r["decisive"] == 0 and r["share"] is None
    assert (r["low"], r["high"]) == (0.0, 1.0) and r["p_value"] == 1.0
