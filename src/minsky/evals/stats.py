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
- (Elo and Bradley–Terry ratings from pairwise games are in `minsky.evals.ratings`.)
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


def sign_test_p(k: int, m: int) -> float:
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
    return McNemar(n, b01, b10, difference, sign_test_p(b01, b01 + b10))


# --------------------------------------------------------------------------- Student t


_BETACF_EPS = 1e-15
_BETACF_TINY = 1e-300
_BETACF_MAXIT = 10_000


def _lentz(aa: float, c: float, d: float) -> tuple[float, float]:
    """One modified-Lentz update of (c, d) by coefficient `aa`, kept away from zero."""
    d = 1.0 + aa * d
    if abs(d) < _BETACF_TINY:
        d = _BETACF_TINY
    c = 1.0 + aa / c
    if abs(c) < _BETACF_TINY:
        c = _BETACF_TINY
    return c, 1.0 / d


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
        # even step of the recurrence, then the odd one
        c, d = _lentz(m * (b - m) * x / ((qam + m2) * (a + m2)), c, d)
        h *= d * c
        c, d = _lentz(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)), c, d)
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


def position_bias(verdicts: Sequence[str | None], confidence: float = 0.95) -> dict[str, Any]:
    """How often a pairwise judge prefers the answer shown first ("A").

    Each verdict is one judgment in one order: "A", "B", or a tie/unparsed (anything
    else, not counted). Every pair is judged in both orders, so an unbiased judge gives
    a share near 0.5 whatever the answers' quality. Reports the share with its Wilson
    interval and the exact two-sided sign-test p-value against 0.5.
    """
    decisive = sum(v in ("A", "B") for v in verdicts)
    first = sum(v == "A" for v in verdicts)
    low, high = wilson_interval(first, decisive, confidence)
    return {"decisive": decisive, "first_won": first,
            "share": first / decisive if decisive else None, "low": low, "high": high,
            "confidence": confidence, "p_value": sign_test_p(first, decisive)}


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
        "p_value": sign_test_p(longer_won, decisive),
        "ties": ties,
        "equal_length": equal_length,
    }
