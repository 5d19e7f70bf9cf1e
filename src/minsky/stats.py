"""Statistics for comparing societies of models with each other and with baselines.

Pure Python (standard library only), deterministic given a seed. What is here, and where
it comes from:

- Wilson score interval for a proportion (Wilson 1927; recommended over the Wald interval by
  Brown, Cai & DasGupta 2001, "Interval Estimation for a Binomial Proportion").
- Percentile bootstrap intervals (Efron & Tibshirani 1993, "An Introduction to the
  Bootstrap", ch. 13), for one sample and for paired differences.
- McNemar's test for two systems on the same cases, in its exact (binomial) form
  (McNemar 1947; exact version as in Fagerland, Lydersen & Laake 2013, "The McNemar test
  for binary matched-pairs data: mid-p and asymptotic are better than exact conditional").
- Online Elo ratings (Elo 1978, "The Rating of Chessplayers, Past and Present").
- Bradley–Terry strengths by the MM algorithm (Bradley & Terry 1952; Hunter 2004,
  "MM algorithms for generalized Bradley–Terry models", Ann. Statist. 32(1)), with the
  existence condition of Ford (1957) / Hunter (2004, Assumption 1).
- Bootstrap intervals for ratings (resampling games, as in the LMSYS Chatbot Arena;
  Chiang et al. 2024, "Chatbot Arena: An Open Platform for Evaluating LLMs by Human
  Preference").
- The permutation test and the sharded likelihood comparison test for test-set
  contamination (Oren et al. 2023, "Proving Test Set Contamination in Black Box Language
  Models"), with the Student t CDF computed through the regularised incomplete beta
  function by its continued fraction (Press et al., "Numerical Recipes", 3rd ed., §6.4,
  `betacf`).
- A length-bias check for pairwise judges (Dubois et al. 2024, "Length-Controlled
  AlpacaEval"; Zheng et al. 2023, "Judging LLM-as-a-Judge", on verbosity bias).

Percentiles throughout use linear interpolation between order statistics (Hyndman & Fan
1996, definition 7; numpy's default), so results match `numpy.percentile`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist, fmean
from typing import Any

Game = tuple[str, str, float]
"""One game: (player a, player b, score of a), score 1 = a won, 0.5 = tie, 0 = b won."""


# --------------------------------------------------------------------------- helpers


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile of already sorted values, interpolating linearly (Hyndman–Fan 7)."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("quantile of no values")
    pos = q * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def _percentile_interval(values: Sequence[float], confidence: float) -> tuple[float, float]:
    """The central `confidence` interval of a bootstrap distribution."""
    ordered = sorted(values)
    alpha = 1.0 - confidence
    return _quantile(ordered, alpha / 2), _quantile(ordered, 1.0 - alpha / 2)


def _binomial_half_cdf(k: int, m: int) -> float:
    """P[X <= k] for X ~ Bin(m, 1/2), exactly.

    The sum is done in integers and divided once: Python's int / int is correctly
    rounded even for huge operands, so there is no cancellation or overflow.
    """
    if k < 0:
        return 0.0
    if k >= m:
        return 1.0
    return sum(math.comb(m, i) for i in range(k + 1)) / 2**m


def _binomial_two_sided(k: int, m: int) -> float:
    """Exact two-sided sign-test p-value: min(1, 2 P[X <= min(k, m-k)]), X ~ Bin(m, 1/2)."""
    if m == 0:
        return 1.0
    return min(1.0, 2.0 * _binomial_half_cdf(min(k, m - k), m))


# --------------------------------------------------------------------------- proportions


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when there are no trials.

    Unlike the Wald interval p ± z·sqrt(p(1-p)/n) it never leaves [0, 1] and keeps close
    to nominal coverage for small n and for p near 0 or 1 (Brown, Cai & DasGupta 2001).
    """
    _check_confidence(confidence)
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    # At p = 0 or 1 one end is exactly 0 or 1 in exact arithmetic; pin it so rounding
    # never puts the point estimate outside its own interval.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


# --------------------------------------------------------------------------- bootstrap


def bootstrap_interval(
    values: Sequence[float],
    stat: Callable[[Sequence[float]], float] = fmean,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `stat` over `values` (resampled with replacement)."""
    _check_confidence(confidence)
    if not values:
        raise ValueError("bootstrap of no values")
    if n_boot < 1:
        raise ValueError("n_boot must be positive")
    rng = random.Random(seed)
    data = list(values)
    n = len(data)
    stats = [stat(rng.choices(data, k=n)) for _ in range(n_boot)]
    return _percentile_interval(stats, confidence)


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Mean difference b − a over paired cases, with a percentile bootstrap interval.

    Cases are resampled as pairs, so the correlation between the two systems on the same
    case is kept (that is what makes a paired test more powerful than two separate
    intervals). `share_le_zero` is the share of resamples whose mean difference is <= 0:
    a one-sided bootstrap p-value for "b is better than a".
    """
    _check_confidence(confidence)
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    if not a:
        raise ValueError("paired bootstrap of no cases")
    if n_boot < 1:
        raise ValueError("n_boot must be positive")
    diffs = [float(y) - float(x) for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    rng = random.Random(seed)
    means = [fmean(rng.choices(diffs, k=n)) for _ in range(n_boot)]
    low, high = _percentile_interval(means, confidence)
    return {
        "n": n,
        "mean_diff": fmean(diffs),
        "low": low,
        "high": high,
        "confidence": confidence,
        "share_le_zero": sum(m <= 0.0 for m in means) / n_boot,
        "n_boot": n_boot,
    }


# --------------------------------------------------------------------------- McNemar


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test of two systems on the same cases.

    b01: cases a got wrong and b got right; b10: a right, b wrong. difference is
    accuracy(b) − accuracy(a) = (b01 − b10) / n. p_value is two-sided and exact.
    """

    n: int
    b01: int
    b10: int
    difference: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> McNemar:
    """Exact two-sided McNemar test: only discordant cases carry information.

    Under H0 (equal accuracy) each discordant case is equally likely to favour a or b, so
    b01 ~ Bin(b01 + b10, 1/2). The exact test is used instead of the chi-squared
    approximation because evaluation sets are often small and discordant counts smaller.
    """
    if len(a_correct) != len(b_correct):
        raise ValueError(
            f"paired samples differ in length: {len(a_correct)} and {len(b_correct)}"
        )
    b01 = sum(1 for x, y in zip(a_correct, b_correct, strict=True) if not x and y)
    b10 = sum(1 for x, y in zip(a_correct, b_correct, strict=True) if x and not y)
    n = len(a_correct)
    difference = (b01 - b10) / n if n else 0.0
    return McNemar(n, b01, b10, difference, _binomial_two_sided(b01, b01 + b10))


# --------------------------------------------------------------------------- ratings


def _check_game(game: Game) -> tuple[str, str, float]:
    a, b, score = game
    if a == b:
        raise ValueError(f"a player cannot play itself: {a!r}")
    score = float(score)
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"score must lie in [0, 1], got {score}")
    return a, b, score


def elo_ratings(
    games: Sequence[Game], k: float = 32, base: float = 1000, scale: float = 400
) -> dict[str, float]:
    """Online Elo ratings, updating after every game in the order given.

    Expected score E_a = 1 / (1 + 10^((R_b − R_a)/scale)); R_a += k (S_a − E_a) and
    R_b += k ((1 − S_a) − (1 − E_a)). Every game moves the same number of points from one
    player to the other, so the mean rating stays at `base`. Elo depends on game order;
    use `bradley_terry` for an order-free fit.
    """
    ratings: dict[str, float] = {}
    for game in games:
        a, b, score = _check_game(game)
        ra = ratings.setdefault(a, float(base))
        rb = ratings.setdefault(b, float(base))
        expected_a = 1.0 / (1.0 + 10.0 ** ((rb - ra) / scale))
        delta = k * (score - expected_a)
        ratings[a] = ra + delta
        ratings[b] = rb - delta
    return ratings


def _strong_components(nodes: Sequence[str], beat: dict[str, set[str]]) -> dict[str, int]:
    """Strongly connected components of the "took points from" graph (Kosaraju, iterative)."""
    order: list[str] = []
    seen: set[str] = set()
    for start in nodes:
        if start in seen:
            continue
        seen.add(start)
        stack = [(start, iter(sorted(beat[start])))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                order.append(node)
            elif nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, iter(sorted(beat[nxt]))))
    beaten_by: dict[str, set[str]] = {v: set() for v in nodes}
    for u in nodes:
        for v in beat[u]:
            beaten_by[v].add(u)
    comp: dict[str, int] = {}
    label = 0
    for start in reversed(order):
        if start in comp:
            continue
        comp[start] = label
        todo = [start]
        while todo:
            node = todo.pop()
            for prev in beaten_by[node]:
                if prev not in comp:
                    comp[prev] = label
                    todo.append(prev)
        label += 1
    return comp


def bradley_terry(
    games: Sequence[Game], iters: int = 1000, tol: float = 1e-10
) -> dict[str, float]:
    """Maximum-likelihood Bradley–Terry ratings on the Elo scale, by Hunter's MM algorithm.

    Model: P(i beats j) = p_i / (p_i + p_j). A tie counts as half a win for each side (a
    score s counts as s wins for a and 1 − s for b). The MM update (Hunter 2004, eq. 3) is
    p_i ← W_i / Σ_j n_ij / (p_i + p_j), with W_i the wins of i and n_ij the games between i
    and j; it increases the likelihood at every step. Ratings are 400·log10(p_i), shifted
    so that within each connected group of players the mean rating is 1000 (ratings of
    players who are not linked by any chain of games are not comparable). Players with no
    games do not appear.

    Speed. MM converges only linearly, and slowly when strengths are far apart (one player
    winning 100 of 101 games is still several rating points off after 1000 steps). So each
    round also tries a Newton step on the log-strengths and keeps whichever of the two has
    the higher likelihood: the ascent of MM is kept, and near the optimum convergence is
    quadratic. Newton steps need an n × n solve and are skipped above 150 players.
    Iterates until the largest change of a log-strength is below `tol`, or `iters` rounds.

    Prior. The MLE exists only if, within each connected group, every split of the players
    into two sides has someone on each side taking points from the other (Ford 1957;
    Hunter 2004, Assumption 1): a player who won every game would otherwise have infinite
    strength. So, only when that fails, each player in a group that took no points from
    the rest of its connected group, or lost no points to it, gets one virtual tie with a
    virtual opponent of fixed strength 1 (rating 1000 before the final shift: an average
    player). A player with zero wins or zero losses is the simplest such group; treating
    whole groups is what makes the MLE exist in every case (e.g. A and B trade wins and
    both always beat C: C alone would not suffice). With the condition met (e.g. A beat B
    three times and lost once) no prior is added and the result is the exact MLE
    (p_A / p_B = 3).
    """
    wins: dict[str, float] = {}
    pair_games: dict[str, dict[str, float]] = {}
    beat: dict[str, set[str]] = {}
    for game in games:
        a, b, score = _check_game(game)
        for p in (a, b):
            if p not in wins:
                wins[p] = 0.0
                pair_games[p] = {}
                beat[p] = set()
        wins[a] += score
        wins[b] += 1.0 - score
        pair_games[a][b] = pair_games[a].get(b, 0.0) + 1.0
        pair_games[b][a] = pair_games[b].get(a, 0.0) + 1.0
        if score > 0.0:
            beat[a].add(b)
        if score < 1.0:
            beat[b].add(a)
    if not wins:
        return {}
    # Sorting makes the result independent of the order the games came in (up to
    # floating-point rounding in the sums).
    players = sorted(wins)
    index = {p: i for i, p in enumerate(players)}
    n = len(players)

    # Connected groups (ignoring who won) and strongly connected ones (following wins).
    group = [-1] * n
    n_groups = 0
    for start in range(n):
        if group[start] >= 0:
            continue
        group[start] = n_groups
        todo = [players[start]]
        while todo:
            node = todo.pop()
            for nxt in pair_games[node]:
                if group[index[nxt]] < 0:
                    group[index[nxt]] = n_groups
                    todo.append(nxt)
        n_groups += 1
    strong = _strong_components(players, beat)
    took_from_outside: set[int] = set()
    lost_to_outside: set[int] = set()
    for p in players:
        for q in beat[p]:
            if strong[p] != strong[q]:
                took_from_outside.add(strong[p])
                lost_to_outside.add(strong[q])
    components_in_group: dict[int, set[int]] = {}
    for p in players:
        components_in_group.setdefault(group[index[p]], set()).add(strong[p])
    prior = [
        len(components_in_group[group[i]]) > 1
        and (strong[p] not in took_from_outside or strong[p] not in lost_to_outside)
        for i, p in enumerate(players)
    ]

    # Each prior player gets half a win (the virtual tie) and one game with strength 1.
    fit = _BTProblem(
        w=[wins[p] + (0.5 if prior[i] else 0.0) for i, p in enumerate(players)],
        pairs=[
            (index[p], index[q], count)
            for p in players
            for q, count in sorted(pair_games[p].items())
            if index[p] < index[q]
        ],
        prior=prior,
        group=group,
        # A group with a prior is anchored by the virtual opponent, so it must not be
        # shifted during the iteration or the fixed point would change.
        free_groups={group[i] for i in range(n)} - {group[i] for i in range(n) if prior[i]},
    )
    theta = fit.solve(iters, tol)
    _centre(theta, group, set())
    factor = 400.0 / math.log(10.0)
    return {p: 1000.0 + factor * theta[i] for i, p in enumerate(players)}


_NEWTON_MAX_PLAYERS = 150


def _log1pexp(x: float) -> float:
    """log(1 + e^x) without overflow."""
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


def _sigmoid(x: float) -> float:
    """1 / (1 + e^-x) without overflow."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@dataclass
class _BTProblem:
    """Bradley–Terry log-likelihood in log-strengths θ, with the virtual opponent at θ = 0.

    ℓ(θ) = Σ_i W_i θ_i − Σ_{i<j} n_ij log(e^θ_i + e^θ_j) − Σ_{i in prior} log(e^θ_i + 1).
    """

    w: list[float]
    pairs: list[tuple[int, int, float]]
    prior: list[bool]
    group: list[int]
    free_groups: set[int]

    def loglik(self, theta: list[float]) -> float:
        total = sum(wi * t for wi, t in zip(self.w, theta, strict=True))
        for i, j, count in self.pairs:
            # log(e^a + e^b) = a + log(1 + e^(b − a))
            total -= count * (theta[i] + _log1pexp(theta[j] - theta[i]))
        for i, has_prior in enumerate(self.prior):
            if has_prior:
                total -= _log1pexp(theta[i])
        return total

    def mm_step(self, theta: list[float]) -> list[float]:
        """Hunter's MM update p_i ← W_i / Σ_j n_ij / (p_i + p_j), in log-strengths.

        Since n_ij / (p_i + p_j) = n_ij σ(θ_i − θ_j) / p_i (and 1 / (p_i + 1) = σ(θ_i) / p_i
        for the virtual opponent), the update is θ_i ← θ_i + log W_i − log Σ_j n_ij
        σ(θ_i − θ_j), which never forms e^θ and so cannot overflow.
        """
        denom = [0.0] * len(theta)
        for i, j, count in self.pairs:
            # p_i / (p_i + p_j) = σ(θ_i − θ_j)
            denom[i] += count * _sigmoid(theta[i] - theta[j])
            denom[j] += count * _sigmoid(theta[j] - theta[i])
        for i, has_prior in enumerate(self.prior):
            if has_prior:
                denom[i] += _sigmoid(theta[i])
        return [t + math.log(wi / d) for t, wi, d in zip(theta, self.w, denom, strict=True)]

    def newton_step(self, theta: list[float]) -> list[float] | None:
        """A full Newton step on ℓ, or None if the system cannot be solved.

        For a group without a prior ℓ does not change when all its θ shift together, so the
        Hessian is singular along that direction; adding 1·1ᵀ over the group makes it
        positive definite without changing the step (the gradient is orthogonal to 1).
        """
        n = len(theta)
        grad = list(self.w)
        hess = [[0.0] * n for _ in range(n)]  # minus the Hessian of ℓ
        for i, j, count in self.pairs:
            pij = _sigmoid(theta[i] - theta[j])
            grad[i] -= count * pij
            grad[j] -= count * (1.0 - pij)
            h = count * pij * (1.0 - pij)
            hess[i][i] += h
            hess[j][j] += h
            hess[i][j] -= h
            hess[j][i] -= h
        for i, has_prior in enumerate(self.prior):
            if has_prior:
                piv = _sigmoid(theta[i])
                grad[i] -= piv
                hess[i][i] += piv * (1.0 - piv)
        for i in range(n):
            if self.group[i] in self.free_groups:
                for j in range(n):
                    if self.group[j] == self.group[i]:
                        hess[i][j] += 1.0
        step = _cholesky_solve(hess, grad)
        if step is None:
            return None
        return [t + s for t, s in zip(theta, step, strict=True)]

    def solve(self, iters: int, tol: float) -> list[float]:
        theta = [0.0] * len(self.w)
        use_newton = len(theta) <= _NEWTON_MAX_PLAYERS
        for _ in range(iters):
            new = self.mm_step(theta)
            if use_newton:
                newton = self.newton_step(theta)
                if newton is not None and self.loglik(newton) > self.loglik(new):
                    new = newton
            _centre(new, self.group, set(range(max(self.group) + 1)) - self.free_groups)
            change = max(abs(a - b) for a, b in zip(new, theta, strict=True))
            theta = new
            if change < tol:
                break
        return theta


def _cholesky_solve(matrix: list[list[float]], rhs: list[float]) -> list[float] | None:
    """Solve a symmetric positive definite system; None if it is not numerically so."""
    n = len(rhs)
    low = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = matrix[i][j] - sum(low[i][k] * low[j][k] for k in range(j))
            if i == j:
                if s <= 1e-300:
                    return None
                low[i][i] = math.sqrt(s)
            else:
                low[i][j] = s / low[j][j]
    y = [0.0] * n
    for i in range(n):
        y[i] = (rhs[i] - sum(low[i][k] * y[k] for k in range(i))) / low[i][i]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (y[i] - sum(low[k][i] * x[k] for k in range(i + 1, n))) / low[i][i]
    return x


def _centre(theta: list[float], group: list[int], skip: set[int]) -> None:
    """Shift log-strengths in place so each group (other than `skip`) has mean zero."""
    totals: dict[int, list[float]] = {}
    for g, t in zip(group, theta, strict=True):
        if g not in skip:
            totals.setdefault(g, []).append(t)
    means = {g: fmean(ts) for g, ts in totals.items()}
    for i, g in enumerate(group):
        if g in means:
            theta[i] -= means[g]


def bootstrap_ratings(
    games: Sequence[Game],
    fit: Callable[[Sequence[Game]], dict[str, float]] = bradley_terry,
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals for ratings, resampling games with replacement and refitting.

    Every player of the full fit gets an interval, computed over the resamples in which
    the player played at least once; (nan, nan) if it was never drawn (vanishingly rare
    unless n_boot is tiny). With `bradley_terry` each resample is centred at 1000, so the
    intervals describe a player's standing relative to the field.
    """
    _check_confidence(confidence)
    if n_boot < 1:
        raise ValueError("n_boot must be positive")
    data = list(games)
    players = fit(data).keys() if data else []
    rng = random.Random(seed)
    draws: dict[str, list[float]] = {p: [] for p in players}
    for _ in range(n_boot):
        for p, r in fit(rng.choices(data, k=len(data))).items():
            draws[p].append(r)
    return {
        p: _percentile_interval(v, confidence) if v else (math.nan, math.nan)
        for p, v in draws.items()
    }


# --------------------------------------------------------------------------- Student t


_BETACF_EPS = 1e-15
_BETACF_TINY = 1e-300
_BETACF_MAXIT = 10_000


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for the incomplete beta function (modified Lentz; NR §6.4)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < _BETACF_TINY:
        d = _BETACF_TINY
    d = 1.0 / d
    h = d
    for m in range(1, _BETACF_MAXIT + 1):
        m2 = 2 * m
        # Even step of the recurrence.
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < _BETACF_TINY:
            d = _BETACF_TINY
        c = 1.0 + aa / c
        if abs(c) < _BETACF_TINY:
            c = _BETACF_TINY
        d = 1.0 / d
        h *= d * c
        # Odd step.
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < _BETACF_TINY:
            d = _BETACF_TINY
        c = 1.0 + aa / c
        if abs(c) < _BETACF_TINY:
            c = _BETACF_TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _BETACF_EPS:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b})")


def regularized_beta(x: float, a: float, b: float, *, y: float | None = None) -> float:
    """The regularised incomplete beta function I_x(a, b).

    `y` may give 1 − x when it is known more precisely than the subtraction would give it
    (e.g. t²/(df + t²) next to x = df/(df + t²)). The continued fraction converges fast
    for x < (a + 1)/(a + b + 2); otherwise the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) is
    used (NR §6.4).
    """
    if a <= 0 or b <= 0:
        raise ValueError("a and b must be positive")
    if y is None:
        y = 1.0 - x
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, y) / b


def student_t_cdf(t: float, df: float) -> float:
    """P[T <= t] for Student's t with `df` degrees of freedom (df > 0, may be fractional).

    Uses P[T > |t|] = I_x(df/2, 1/2) / 2 with x = df / (df + t²), so the tail is computed
    directly (not as 1 − something) and small p-values keep their precision.
    """
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    t2 = t * t
    tail = 0.5 * regularized_beta(df / (df + t2), df / 2.0, 0.5, y=t2 / (df + t2))
    return 1.0 - tail if t > 0 else tail


# --------------------------------------------------------------------------- contamination


def permutation_test(canonical: float, shuffled: Sequence[float]) -> float:
    """One-sided permutation p-value that the canonical order is more likely than shuffles.

    (1 + #{shuffled >= canonical}) / (1 + len(shuffled)): the canonical order counts as
    one of the permutations, so the p-value is never 0 and is exact under exchangeability
    (Oren et al. 2023, §3; Phipson & Smyth 2010). Ties count against contamination.
    """
    return (1 + sum(1 for s in shuffled if s >= canonical)) / (1 + len(shuffled))


def sharded_permutation_test(
    canonical_by_shard: Sequence[float], shuffled_by_shard: Sequence[Sequence[float]]
) -> dict[str, Any]:
    """Sharded likelihood comparison test for test-set contamination (Oren et al. 2023).

    The data set is split into shards; for each shard the log-likelihood of the examples
    in canonical order is compared with the mean log-likelihood of the same shard under
    random orders. A contaminated model memorised the canonical order, so the differences
    should be positive. A one-sided one-sample t-test of mean difference > 0 across the
    shards gives the p-value (df = shards − 1). If the differences have no spread, t is
    +inf (p = 0) for a positive mean, −inf (p = 1) for a negative one, and 0 (p = 1, no
    evidence) when all are zero. Each shard's own permutation p-value is reported too.
    """
    shards = len(canonical_by_shard)
    if shards != len(shuffled_by_shard):
        raise ValueError(
            f"{shards} canonical values but {len(shuffled_by_shard)} shards of shuffles"
        )
    if shards < 2:
        raise ValueError("the sharded test needs at least two shards")
    if any(len(s) == 0 for s in shuffled_by_shard):
        raise ValueError("every shard needs at least one shuffled order")
    diffs = [
        float(c) - fmean(s) for c, s in zip(canonical_by_shard, shuffled_by_shard, strict=True)
    ]
    mean = fmean(diffs)
    var = sum((d - mean) ** 2 for d in diffs) / (shards - 1)
    df = shards - 1
    if var > 0.0:
        t = mean / math.sqrt(var / shards)
        p = student_t_cdf(-t, df)
    elif mean > 0.0:
        t, p = math.inf, 0.0
    elif mean < 0.0:
        t, p = -math.inf, 1.0
    else:
        t, p = 0.0, 1.0
    return {
        "shards": shards,
        "differences": diffs,
        "mean_difference": mean,
        "std_difference": math.sqrt(var),
        "t": t,
        "df": df,
        "p_value": p,
        "shard_p_values": [
            permutation_test(c, s)
            for c, s in zip(canonical_by_shard, shuffled_by_shard, strict=True)
        ],
    }


# --------------------------------------------------------------------------- judges


def length_bias(
    pairs: Sequence[tuple[int, int, float]], confidence: float = 0.95
) -> dict[str, Any]:
    """How often a pairwise judge prefers the longer answer.

    Each pair is (len_a, len_b, score_a). Only decisive judgments count: score ≠ 0.5 and
    the lengths differ; a score above 0.5 is a win for a, below for b. An unbiased judge
    on answers of similar quality gives a share near 0.5. Reports the share with its
    Wilson interval and the exact two-sided sign-test p-value against 0.5 (share is None
    when no judgment was decisive).
    """
    decisive = longer_won = ties = equal_length = 0
    for len_a, len_b, score in pairs:
        if score == 0.5:
            ties += 1
            continue
        if len_a == len_b:
            equal_length += 1
            continue
        decisive += 1
        a_won = score > 0.5
        if (len_a > len_b) == a_won:
            longer_won += 1
    low, high = wilson_interval(longer_won, decisive, confidence)
    return {
        "decisive": decisive,
        "longer_won": longer_won,
        "share": longer_won / decisive if decisive else None,
        "low": low,
        "high": high,
        "confidence": confidence,
        "p_value": _binomial_two_sided(longer_won, decisive),
        "ties": ties,
        "equal_length": equal_length,
    }
