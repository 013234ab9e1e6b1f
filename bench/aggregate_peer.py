"""The exact-method benchmark portfolio (scenarios/exact-benchmark.toml) priced with the Python
library `aggregate` (pip install aggregate), as an actuary using it would.

Per group: the member's annual payout, 80% (50%) of the annual cost in the layer
1,250,000 (2,000,000) xs 20,000 of a compound Poisson-lognormal, by `aggregate`'s FFT; then the
group total of n members (fixed frequency n, the member payout as a discrete severity); then the
portfolio as the convolution of the six group totals on one lattice.

usage: python bench/aggregate_peer.py
prints one JSON line: wall seconds, mean, std, VaR and TVaR at 99.5% of the portfolio total.
"""
import json
import time

import numpy as np
from aggregate import Aggregate, build

DEDUCTIBLE, LIMIT = 20_000, 1_000_000
GROUPS = [  # members, admissions per year, mean cost, cv, coinsurance
    (300_000, 0.04, 8_000, 1.5, 0.8),
    (250_000, 0.08, 10_000, 1.6, 0.8),
    (200_000, 0.15, 12_000, 1.8, 0.8),
    (150_000, 0.25, 15_000, 2.0, 0.8),
    (60_000, 0.40, 20_000, 2.0, 0.5),
    (40_000, 0.54, 25_000, 2.2, 0.5),
]
LEVEL = 0.995
PORTFOLIO_SPAN = 2_000.0
PORTFOLIO_LOG2 = 19  # 2^19 x 2,000 = 1.05e9 CNY, above any plausible total


def group_total(members, freq, mean, cv, c):
    layer = LIMIT / c
    member = build(
        f"agg M {freq} claims sev lognorm {mean} cv {cv} poisson "
        f"aggregate ceded to {int(round(c * 100))}% so {layer} xs {DEDUCTIBLE}",
        log2=16, bs=50)
    df = member.density_df
    xs, ps = df.loss.values, df.p_total.values
    keep = ps > 1e-15
    xs, ps = xs[keep], ps[keep] / ps[keep].sum()
    group = Aggregate("G", exp_en=members, sev_name="dhistogram", sev_xs=xs, sev_ps=ps,
                      freq_name="fixed")
    group.update(log2=PORTFOLIO_LOG2, bs=PORTFOLIO_SPAN, approximation="exact",
                 normalize=False)
    return group.density_df.p_total.values


def main():
    began = time.perf_counter()
    transform = None
    for g in GROUPS:
        f = np.fft.rfft(group_total(*g))
        transform = f if transform is None else transform * f
    probs = np.maximum(np.fft.irfft(transform, n=1 << PORTFOLIO_LOG2), 0.0)
    wall = time.perf_counter() - began
    x = np.arange(probs.size) * PORTFOLIO_SPAN
    mean = float((x * probs).sum())
    std = float(np.sqrt(((x - mean) ** 2 * probs).sum()))
    cdf = np.cumsum(probs)
    k = int(np.searchsorted(cdf, LEVEL))
    var = float(x[k])
    tail = probs[k:].copy()
    tail[0] -= cdf[k] - LEVEL if k < probs.size else 0.0
    tvar = float((x[k:] * tail).sum() / tail.sum())
    print(json.dumps({"wall_s": round(wall, 3), "mean": mean, "std": std,
                      "var_0.995": var, "tvar_0.995": tvar}))


if __name__ == "__main__":
    main()
