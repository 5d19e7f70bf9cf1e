"""Evaluation: benchmark formats and loading, the evaluation harness, the arena,
contamination tests, statistics and ratings.

    formats       the benchmark formats (GSM8K, MAWPS, ARC, MMLU, …) and scoring
    benchmarks    load a benchmark: detect its format, sample, unique ids
    harness       `minsky eval`: societies on the same cases, intervals, paired tests
    arena         `minsky arena`: pairwise judging in both orders, ratings
    contamination the permutation test for benchmark contamination
    stats         Wilson intervals, McNemar, bootstrap, t-tests
    ratings       Bradley–Terry and Elo

Running a society over many items and keeping the results file is `minsky.results`.
"""
