"""A plain vectorised numpy Monte Carlo of the pricing benchmark case, as an analyst would write
it: every admission of every member-year is drawn.

Case (scenarios/benchmark.toml): 100,000 members; admissions per member-year ~ Poisson(0.08);
cost per admission ~ lognormal with mean 25,000 CNY and cv 1.5; a member's payout for the year
is min(1,000,000, 0.8 * max(S - 20,000, 0)) with S the sum of the member's admission costs; the
portfolio total is the sum over members.

Per batch of portfolio-years: the admissions of each year, each on a random member with a
lognormal cost, costs summed per member-year with bincount, the terms applied, members summed.

usage: python3 bench/numpy_baseline.py [portfolio_years=10000] [seed=1]
prints one JSON line: wall seconds, mean and std of the portfolio total, VaR and TVaR at 99.5%.
"""
import json
import math
import sys
import time

import numpy as np

MEMBERS = 100_000
ADMISSION_RATE = 0.08
COST_MEAN, COST_CV = 25_000.0, 1.5
DEDUCTIBLE, COINSURANCE, LIMIT = 20_000.0, 0.8, 1_000_000.0
LEVEL = 0.995

# Lognormal parameters from the mean and coefficient of variation.
SIGMA = math.sqrt(math.log(1.0 + COST_CV**2))
MU = math.log(COST_MEAN) - 0.5 * SIGMA**2


def portfolio_totals(years, rng, batch=100):
    """Portfolio-year totals, `batch` years (batch x MEMBERS member-years) at a time."""
    totals = np.empty(years)
    for start in range(0, years, batch):
        n = min(batch, years - start)
        # A year's admissions are Poisson(MEMBERS * rate), each falling on a uniformly chosen
        # member: the same law as an independent Poisson(rate) count per member.
        admissions = rng.poisson(MEMBERS * ADMISSION_RATE, size=n)
        year_of = np.repeat(np.arange(n), admissions)
        member_year = year_of * MEMBERS + rng.integers(0, MEMBERS, size=year_of.size)
        costs = rng.lognormal(MU, SIGMA, size=year_of.size)
        annual_cost = np.bincount(member_year, weights=costs, minlength=n * MEMBERS)
        paid = np.minimum(LIMIT, COINSURANCE * np.maximum(annual_cost - DEDUCTIBLE, 0.0))
        totals[start:start + n] = paid.reshape(n, MEMBERS).sum(axis=1)
    return totals


def main():
    years = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    began = time.perf_counter()
    totals = portfolio_totals(years, np.random.default_rng(seed))
    wall = time.perf_counter() - began
    ordered = np.sort(totals)
    k = math.ceil(LEVEL * years) - 1  # VaR as the ceil(level n)-th order statistic
    print(json.dumps({
        "portfolio_years": years,
        "wall_s": round(wall, 3),
        "member_years_per_s": round(years * MEMBERS / wall),
        "mean": float(totals.mean()),
        "std": float(totals.std(ddof=1)),
        "var_0.995": float(ordered[k]),
        "tvar_0.995": float(ordered[k:].mean()),
    }))


if __name__ == "__main__":
    main()
