"""Does a swept setting matter? The statistics behind a report's verdicts.

For each swept axis, within each setting of the other axes, every value's figures are a mean
with a 95% confidence interval over its seeds (``ok`` runs only: a collapsed or diverged run's
FID is that of a stopped generator, so it is counted, never averaged). Each value is compared
with the best one (lowest mean final FID) by Welch's t-test; the p-values of an axis are
Holm-adjusted together. Where nothing is detected, the seeds a value would need to detect the
largest gap seen come from the observed between-seed spread.

Welch rather than a permutation test: at the 3 seeds a sweep usually has, an exact permutation
test of 3 against 3 runs has 20 splits, so its p-value cannot go below 0.1 and it could never
detect anything; Welch's test assumes roughly normal seed noise, and says so in the report.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from scipy import stats

from gan_lightning.record import Status
from gan_lightning.report.runs import Run, axis_values, named

ALPHA = 0.05
POWER = 0.8
METHOD = (
    "Means over seeds with 95% t confidence intervals, from the runs that ended `ok` (collapsed "
    "or diverged runs are counted, not averaged). Each value is compared with the value of the "
    "lowest mean final FID in the same setting of the other axes: the difference with its 95% "
    "Welch confidence interval and Welch's t-test (unequal variances; a permutation test of 3 "
    "against 3 seeds cannot give p below 0.1, so it could never detect a difference), p-values "
    "Holm-adjusted over the comparisons of the axis. 'Seeds needed': per value, for a two-sided "
    f"t-test at alpha {ALPHA} to detect the largest gap seen with {POWER:.0%} power, given the "
    "pooled between-seed standard deviation.")


@dataclass(frozen=True)
class Metric:
    key: str  # a Run.figure name
    label: str
    lower_is_better: bool
    unit: str = ""


METRICS = (Metric("fid", "final FID", True, "FID"), Metric("best_fid", "best FID", True, "FID"),
           Metric("kid", "KID", True, "KID"), Metric("is", "IS", False, "IS"),
           Metric("precision", "precision", False), Metric("recall", "recall", False))
PRIMARY = METRICS[0]


def number(x: float | None) -> str:
    """3 significant digits, never an exponent: 71.2, 2.13, 0.0382, 1092."""
    if x is None or not math.isfinite(x):
        return "-"
    if x == 0:
        return "0"
    decimals = max(0, 2 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def p_text(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "-"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}" if p < 0.01 else f"p={p:.2f}"


@dataclass
class Estimate:
    """Mean of n values with a 95% t interval (no interval below two values)."""

    n: int
    mean: float | None
    low: float | None = None
    high: float | None = None
    sd: float | None = None

    @classmethod
    def of(cls, values: list[float]) -> Estimate:
        n = len(values)
        if n == 0:
            return cls(0, None)
        mean = statistics.fmean(values)
        if n == 1:
            return cls(1, mean)
        sd = statistics.stdev(values)
        half = stats.t.ppf(1 - ALPHA / 2, n - 1) * sd / math.sqrt(n)
        return cls(n, mean, mean - half, mean + half, sd)

    def text(self) -> str:
        if self.low is None:
            return number(self.mean)
        return f"{number(self.mean)} [{number(self.low)}, {number(self.high)}]"


@dataclass
class Difference:
    """``value`` minus the axis's best value, in the metric's units (Welch)."""

    value: str
    best: str
    diff: float
    low: float | None
    high: float | None
    p: float | None
    p_holm: float | None = None

    @property
    def detected(self) -> bool:
        return self.p_holm is not None and self.p_holm < ALPHA


def welch(a: list[float], b: list[float]) -> tuple[float, float | None, float | None,
                                                    float | None]:
    """mean(a) - mean(b), its 95% Welch interval and two-sided p (no test below 2 + 2 values)."""
    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return diff, None, None, None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:  # identical seeds (a deterministic toy): the difference is exact
        return diff, diff, diff, (1.0 if diff == 0 else 0.0)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = stats.t.ppf(1 - ALPHA / 2, df) * se
    p = 2 * stats.t.sf(abs(diff) / se, df)
    return diff, diff - half, diff + half, float(p)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error at most alpha)."""
    order = sorted(range(len(pvalues)), key=pvalues.__getitem__)
    adjusted = [0.0] * len(pvalues)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted


def seeds_needed(gap: float, sd: float, alpha: float = ALPHA, power: float = POWER,
                 limit: int = 10_000) -> int | None:
    """Seeds per value for a two-sided two-sample t-test to detect ``gap`` given the seed
    standard deviation ``sd`` (noncentral t); None when the gap is 0 or needs over ``limit``."""
    if gap == 0 or not math.isfinite(gap) or not sd or not math.isfinite(sd):
        return None
    effect = abs(gap) / sd
    for n in range(2, limit + 1):
        df = 2 * n - 2
        crit = stats.t.ppf(1 - alpha / 2, df)
        ncp = effect * math.sqrt(n / 2)
        if stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp) >= power:
            return n
    return None


@dataclass
class Arm:
    """One value of an axis in one setting of the others: its runs and their statuses."""

    value: str
    runs: list[Run]

    @property
    def ok(self) -> list[Run]:
        return [r for r in self.runs if r.status == Status.OK]

    @property
    def not_ok(self) -> Counter[str]:
        return Counter(str(r.status) for r in self.runs if r.status != Status.OK)

    def values(self, metric: Metric) -> list[float]:
        got = (r.figure(metric.key) for r in self.ok)
        return [v for v in got if v is not None and math.isfinite(v)]


@dataclass
class Comparison:
    """One axis within one setting of the other axes."""

    axis: str
    context: dict[str, str]
    arms: list[Arm]
    estimates: dict[str, dict[str, Estimate]] = field(default_factory=dict)  # metric -> value
    differences: dict[str, list[Difference]] = field(default_factory=dict)  # metric -> list
    best: str | None = None
    pooled_sd: float | None = None
    seeds_needed: int | None = None
    verdict: str = ""

    @property
    def label(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.context.items())
        return f"{self.axis} ({where})" if where else self.axis


def pooled_sd(groups: list[list[float]]) -> float | None:
    dof = sum(len(g) - 1 for g in groups if len(g) > 1)
    if dof == 0:
        return None
    return math.sqrt(sum((len(g) - 1) * statistics.variance(g) for g in groups if len(g) > 1)
                     / dof)


def compare(arms: list[Arm], axis: str, context: dict[str, str]) -> Comparison:
    """Estimates and differences from the best value for every metric (p not yet adjusted)."""
    found = Comparison(axis, context, arms)
    for metric in METRICS:
        found.estimates[metric.key] = {a.value: Estimate.of(a.values(metric)) for a in arms}
    fids = found.estimates[PRIMARY.key]
    scored = [a for a in arms if fids[a.value].mean is not None]
    if not scored:
        return found
    found.best = min(scored, key=lambda a: fids[a.value].mean).value
    best_arm = next(a for a in arms if a.value == found.best)
    for metric in METRICS:
        best_values = best_arm.values(metric)
        found.differences[metric.key] = [
            Difference(a.value, found.best, *welch(a.values(metric), best_values))
            for a in scored if a.value != found.best and a.values(metric) and best_values]
    found.pooled_sd = pooled_sd([a.values(PRIMARY) for a in scored])
    return found


def comparisons(runs: list[Run], settings: list[str]) -> list[Comparison]:
    """Every axis within every setting of the other axes, p-values Holm-adjusted per axis
    and metric, each with its verdict."""
    found: list[Comparison] = []
    for axis in settings:
        others = [a for a in settings if a != axis]
        axis_found = []
        for combo in itertools.product(*(axis_values(runs, a) for a in others)):
            context = dict(zip(others, combo, strict=True))
            inside = [r for r in runs if all(r.overrides.get(a, "") == v
                                             for a, v in context.items())]
            arms = [Arm(v, [r for r in inside if r.overrides.get(axis, "") == v])
                    for v in axis_values(inside, axis)]
            arms = [a for a in arms if a.runs]
            if len(arms) > 1:
                axis_found.append(compare(arms, axis, context))
        for metric in METRICS:
            tested = [d for c in axis_found for d in c.differences.get(metric.key, [])
                      if d.p is not None]
            for difference, adjusted in zip(tested, holm([d.p for d in tested]), strict=True):
                difference.p_holm = adjusted
        for comparison in axis_found:
            comparison.verdict = verdict(comparison)
        found += axis_found
    return found


def not_averaged(arms: list[Arm], axis: str) -> str:
    """'sgd: 3 of 3 collapsed' for every value with runs that did not end ok (arms of one
    value in several settings are counted together)."""
    counts: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()
    for arm in arms:
        counts.setdefault(arm.value, Counter()).update(arm.not_ok)
        totals[arm.value] += len(arm.runs)
    notes = []
    for value, bad in counts.items():
        if bad:
            what = ", ".join(f"{n} of {totals[value]} {s}" for s, n in sorted(bad.items()))
            notes.append(f"{named(axis, value)}: {what}")
    return "; ".join(notes)


def headlines(found: list[Comparison]) -> list[str]:
    """The verdicts a report leads with: one per comparison, except that an axis with nothing
    to compare in any setting of the others gets one line for all of them."""
    lines = []
    for axis in dict.fromkeys(c.axis for c in found):
        of_axis = [c for c in found if c.axis == axis]
        empty = [c for c in of_axis if c.best is None or not c.differences.get(PRIMARY.key)]
        if len(of_axis) > 1 and len(empty) == len(of_axis):
            others = ", ".join(of_axis[0].context)
            skipped = not_averaged([a for c in of_axis for a in c.arms], axis)
            lines.append(f"{axis}: nothing to compare in any setting of {others}: fewer than "
                         "two values have a run that ended ok."
                         + (f" Not averaged: {skipped}." if skipped else ""))
        else:
            lines += [c.verdict for c in of_axis]
    return lines


def gap_text(d: Difference, unit: str) -> str:
    """'71.1 FID (95% CI 61.8 to 80.4, p<0.001)': how much worse than the best, and how sure."""
    return (f"{number(abs(d.diff))} {unit} (95% CI {number(d.low)} to {number(d.high)}, "
            f"{p_text(d.p_holm)})")


def verdict(c: Comparison) -> str:
    """One sentence from the numbers: what differs, what does not, and why not."""
    head = f"{c.label}: "
    unit = PRIMARY.unit
    skipped = not_averaged(c.arms, c.axis)
    tail = f" Not averaged: {skipped}." if skipped else ""
    fids = c.estimates[PRIMARY.key]
    scored = [a for a in c.arms if fids[a.value].mean is not None]
    best = named(c.axis, c.best) if c.best is not None else ""
    if len(scored) < 2:
        return head + "nothing to compare: fewer than two values have a run that ended ok." + tail
    seeds = sorted({fids[a.value].n for a in scored})
    seeds_text = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    differences = c.differences[PRIMARY.key]
    if all(d.p is None for d in differences):
        worst = max(differences, key=lambda d: d.diff)
        return (head + f"{best} has the lowest final FID ({number(fids[c.best].mean)}, "
                f"{number(worst.diff)} below {named(c.axis, worst.value)}); no confidence "
                "intervals or p-values: a value with one seed gives no measure of the seed "
                "noise." + tail)
    detected = [d for d in differences if d.detected]
    undetected = [d for d in differences if not d.detected]
    parts = []
    if detected:
        beaten = "; ".join(f"{named(c.axis, d.value)} by {gap_text(d, unit)}"
                           for d in sorted(detected, key=lambda d: d.diff))
        parts.append(f"{best} beats {beaten}, at {seeds_text} seeds")
    if undetected:
        largest = max(undetected, key=lambda d: abs(d.diff))
        c.seeds_needed = seeds_needed(largest.diff, c.pooled_sd or 0.0)
        need = (f"about {c.seeds_needed} seeds per value would detect a gap of that size"
                if c.seeds_needed else "no number of seeds would detect a gap that small")
        others = ", ".join(named(c.axis, d.value) for d in undetected)
        if detected:
            parts.append(f"no difference detected between {best} and {others} (largest gap "
                         f"{gap_text(largest, unit)}); {need}")
        else:
            parts.append(f"no difference detected at {seeds_text} seeds; the largest gap, "
                         f"{best} vs {named(c.axis, largest.value)}, "
                         f"{gap_text(largest, unit)}, is inside the seed noise; {need}")
    return head + "; ".join(parts) + "." + tail


def jsonable(c: Comparison) -> dict[str, Any]:
    """A comparison for report.json (non-finite numbers as null)."""
    def clean(x: Any) -> Any:
        return None if isinstance(x, float) and not math.isfinite(x) else x

    return {
        "axis": c.axis, "context": c.context, "best": c.best, "verdict": c.verdict,
        "pooled_sd_fid": clean(c.pooled_sd), "seeds_needed": c.seeds_needed,
        "arms": [{"value": a.value, "runs": len(a.runs), "ok": len(a.ok),
                  "not_ok": dict(a.not_ok),
                  "estimates": {m: {k: clean(v) for k, v in vars(c.estimates[m][a.value]).items()}
                                for m in c.estimates}} for a in c.arms],
        "differences": {m: [{k: clean(v) for k, v in vars(d).items()} | {"detected": d.detected}
                            for d in ds] for m, ds in c.differences.items()},
    }
