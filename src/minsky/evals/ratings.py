"""Ratings from pairwise games: online Elo and Bradley–Terry, with bootstrap intervals.

- Online Elo ratings (Elo 1978, "The Rating of Chessplayers, Past and Present").
- Bradley–Terry strengths by the MM algorithm (Bradley & Terry 1952; Hunter 2004,
  "MM algorithms for generalized Bradley–Terry models", Ann. Statist. 32(1)), with the
  existence condition of Ford (1957) / Hunter (2004, Assumption 1).
- Bootstrap intervals for ratings (resampling games, as in the LMSYS Chatbot Arena;
  Chiang et al. 2024).

Pure Python, deterministic given a seed. Split from `minsky.evals.stats`, which it builds on.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import fmean

from minsky.evals.stats import _check_confidence, _percentile_interval

Game = tuple[str, str, float]
"""One game: (player a, player b, score of a), score 1 = a won, 0.5 = tie, 0 = b won."""


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
    wins, pair_games, beat = _tally(games)
    if not wins:
        return {}
    # Sorting makes the result independent of the order the games came in (up to
    # floating-point rounding in the sums).
    players = sorted(wins)
    index = {p: i for i, p in enumerate(players)}
    n = len(players)
    group = _connected_groups(players, index, pair_games)
    prior = _needs_prior(players, index, group, beat)

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


def _tally(
    games: Sequence[Game],
) -> tuple[dict[str, float], dict[str, dict[str, float]], dict[str, set[str]]]:
    """Each player's points (wins, half a win a tie), games per pair, and whom each player
    took points from."""
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
    return wins, pair_games, beat


def _connected_groups(players: list[str], index: dict[str, int],
                      pair_games: dict[str, dict[str, float]]) -> list[int]:
    """The connected group (ignoring who won) of each player, numbered from 0."""
    group = [-1] * len(players)
    n_groups = 0
    for start in range(len(players)):
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
    return group


def _needs_prior(players: list[str], index: dict[str, int], group: list[int],
                 beat: dict[str, set[str]]) -> list[bool]:
    """Whether each player gets the virtual tie: its strongly connected component (following
    wins) is not alone in its group and took no points from the rest, or lost none."""
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
    return [
        len(components_in_group[group[i]]) > 1
        and (strong[p] not in took_from_outside or strong[p] not in lost_to_outside)
        for i, p in enumerate(players)
    ]


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
