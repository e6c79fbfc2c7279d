"""How small a delta a comparison can detect, and how many seeds a delta needs (power analysis).

A seed-group delta (mean of the arm's N_a seeds minus mean of the baseline's N_b seeds, on the same
rows) varies for two reasons: which seeds were drawn, and which queries the test slice holds. We
estimate both from a pilot comparison:

- σ²_seed: the between-seed variance of one run's point metric, pooled within every setting that
  has two seeds or more (sum of squared deviations from each setting's mean / sum of (n − 1)).
- σ²_rows: the variance, over the query-clustered bootstrap resamples, of the paired difference of
  two runs' metrics on the same resampled rows (`retuned_draws`, threshold re-tuned), averaged over
  the pairs that include a baseline run (baseline seed vs baseline seed, arm vs baseline). With a
  single run there is no pair: twice that run's own variance stands in (unpaired, an upper bound).

Then, for a two-sided test at `alpha` with the given power (normal approximation),

    MDE(N_a, N_b) = (z_{1−α/2} + z_{power}) · sqrt(σ²_seed · (1/N_a + 1/N_b) + σ²_rows)

which is (z_{1−α/2} + z_{power}) · sqrt(2σ²_seed/N + σ²_rows) for N seeds a side. σ²_rows is not
divided by N: the part of it that is the arms' systematic disagreement on particular queries does
not average out over seeds (the seed-specific part does, so the formula errs on the safe side),
and only more test queries shrink it. Hence a delta below (z_{1−α/2} + z_{power}) · σ_rows cannot
be detected with any number of seeds on these rows. Holm's correction is not included: with k arms
against one baseline, use alpha/k for a conservative figure.

The seeds a delta needs solve MDE(N, N) = delta for N, rounded up, at least 2 (with one seed a side
the comparison cannot see seed noise at all).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Iterable, Mapping, Sequence

import numpy as np

DEFAULT_POWER = 0.8
MIN_SEEDS = 2
ROW_NOISE_TOO_LARGE = "cannot: the row-level noise alone exceeds it, need more test rows"
SEED_NOISE_UNKNOWN = "unknown: no setting of the pilot has two seeds or more (seed variance unmeasured)"


@dataclass(frozen=True)
class PowerSettings:
    """What the power figures are computed for (`power:` in conf/compare.yaml)."""

    seeds: tuple[int, ...] = (2, 3, 5, 10)  # N seeds a side to give the MDE for
    delta: float | None = 0.01  # the smallest delta worth detecting: the seeds it needs
    level: float = DEFAULT_POWER
    max_seeds: int = 100  # beyond this, "more than max_seeds"


@dataclass(frozen=True)
class Noise:
    """A metric's two sources of noise in one task's comparison (see the module docstring)."""

    seed_variance: float  # NaN: no setting with two paired seeds
    row_variance: float  # of a paired two-run difference over query resamples
    seed_groups: int = 0  # settings behind seed_variance
    run_pairs: int = 0  # run pairs behind row_variance (0: one run's variance doubled, unpaired)

    @property
    def seed_variance_known(self) -> bool:
        return math.isfinite(self.seed_variance)


def critical_sum(alpha: float = 0.05, power: float = DEFAULT_POWER) -> float:
    """z_{1−α/2} + z_{power}: how many standard errors a true delta must span (2.80 at 0.05, 80 %)."""
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha}, {power}")
    z = NormalDist().inv_cdf
    return z(1 - alpha / 2) + z(power)


def pooled_seed_variance(points_by_setting: Iterable[Sequence[float]]) -> tuple[float, int]:
    """(σ²_seed, settings used): within-setting variance pooled over the settings with two finite
    points or more; (NaN, 0) without any."""
    squares, dof, used = 0.0, 0, 0
    for points in points_by_setting:
        values = np.asarray([v for v in points if np.isfinite(v)], dtype=np.float64)
        if values.size >= 2:
            squares += float(((values - values.mean()) ** 2).sum())
            dof += values.size - 1
            used += 1
    return (squares / dof if dof else float("nan")), used


def paired_row_variance(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[float, int]:
    """(σ²_rows, pairs used): the mean over the pairs of the variance of draws_a − draws_b (the
    same resamples; NaN draws left out); (NaN, 0) without a pair of two finite draws or more."""
    variances = []
    for draws_a, draws_b in pairs:
        diff = np.asarray(draws_a, dtype=np.float64) - np.asarray(draws_b, dtype=np.float64)
        diff = diff[np.isfinite(diff)]
        if diff.size >= 2:
            variances.append(float(diff.var(ddof=1)))
    return (float(np.mean(variances)) if variances else float("nan")), len(variances)


def estimate_noise(points_by_setting: Iterable[Sequence[float]], pairs: Sequence[tuple[np.ndarray, np.ndarray]],
                   single_draws: np.ndarray | None = None) -> Noise:
    """`Noise` from the runs' points (grouped by setting) and paired draws; `single_draws` (one
    run's draws) stands in, doubled, when there is no pair."""
    seed_variance, settings = pooled_seed_variance(points_by_setting)
    row_variance, used = paired_row_variance(pairs)
    if not used and single_draws is not None:
        finite = np.asarray(single_draws, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        row_variance = 2.0 * float(finite.var(ddof=1)) if finite.size >= 2 else float("nan")
    return Noise(seed_variance, row_variance, settings, used)


def minimal_detectable_effect(noise: Noise, seeds_arm: int, seeds_base: int | None = None, alpha: float = 0.05,
                              power: float = DEFAULT_POWER) -> float:
    """MDE(N_a, N_b) of the module docstring. An unknown seed variance counts as 0, so the result
    is then a lower bound (`Noise.seed_variance_known`)."""
    seeds_base = seeds_arm if seeds_base is None else seeds_base
    if seeds_arm < 1 or seeds_base < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds_arm}, {seeds_base}")
    seed_variance = noise.seed_variance if noise.seed_variance_known else 0.0
    variance = seed_variance * (1.0 / seeds_arm + 1.0 / seeds_base) + noise.row_variance
    return critical_sum(alpha, power) * math.sqrt(variance) if math.isfinite(variance) else float("nan")


@dataclass(frozen=True)
class SeedsNeeded:
    """Seeds per arm (and per baseline) for a delta, or why no number fits (`seeds` None)."""

    seeds: int | None
    text: str


def seeds_needed(delta: float, noise: Noise, alpha: float = 0.05, power: float = DEFAULT_POWER,
                 max_seeds: int = 100) -> SeedsNeeded:
    """The smallest N (≥ `MIN_SEEDS`) with MDE(N, N) ≤ |delta|; or more than `max_seeds`; or none
    when the row noise alone is too large, or the seed noise was not measured."""
    delta = abs(float(delta))
    if delta == 0:
        raise ValueError("a delta of 0 cannot be detected: give the smallest delta you care about")
    room = (delta / critical_sum(alpha, power)) ** 2 - noise.row_variance
    if not math.isfinite(room) or room <= 0:
        return SeedsNeeded(None, ROW_NOISE_TOO_LARGE if math.isfinite(room) else "unknown: no row noise estimate")
    if not noise.seed_variance_known:
        return SeedsNeeded(None, SEED_NOISE_UNKNOWN)
    seeds = max(MIN_SEEDS, math.ceil(2.0 * noise.seed_variance / room - 1e-9))
    return SeedsNeeded(seeds, str(seeds)) if seeds <= max_seeds else SeedsNeeded(None, f"more than {max_seeds}")


def power_summary(noise: Mapping[str, Noise], seeds: Sequence[int], delta: float | None, alpha: float = 0.05,
                  power: float = DEFAULT_POWER, max_seeds: int = 100) -> dict:
    """Per metric: the noise estimates, MDE for each N in `seeds` (N a side), and the seeds `delta`
    needs; plain JSON values (report.json's `power`, the power command's table)."""
    metrics = {}
    for metric, estimate in noise.items():
        needed = seeds_needed(delta, estimate, alpha, power, max_seeds) if delta else None
        metrics[metric] = {
            "seed_variance": estimate.seed_variance, "row_variance_paired": estimate.row_variance,
            "seed_variance_settings": estimate.seed_groups, "row_variance_run_pairs": estimate.run_pairs,
            "mde_is_lower_bound": not estimate.seed_variance_known,
            "mde_by_seeds": {str(n): minimal_detectable_effect(estimate, int(n), None, alpha, power) for n in seeds},
            "seeds_needed": None if needed is None else needed.seeds,
            "seeds_needed_text": None if needed is None else needed.text,
        }
    return {"alpha": alpha, "power": power, "holm": "not included", "delta": delta, "seeds": list(seeds),
            "metrics": metrics}


METRIC_LABELS = {"f1": "ΔF1", "roc_auc": "ΔROC-AUC"}


def undetectable_notes(groups, noise: Mapping[str, Mapping[str, Noise]], report_role: str = "test",
                       alpha: float = 0.05, power: float = DEFAULT_POWER) -> list[str]:
    """A note for each arm (a `seeds.seed_groups` row with `mde_<metric>`) whose observed |delta|
    is below the MDE for its seeds and rows: its "not significant" says nothing about the delta."""
    notes = []
    for row in groups.itertuples(index=False):
        for metric, label in METRIC_LABELS.items():
            delta, mde = getattr(row, f"delta_{metric}"), getattr(row, f"mde_{metric}")
            if not (math.isfinite(delta) and math.isfinite(mde)) or abs(delta) >= mde:
                continue
            estimate = noise.get(row.task, {}).get(metric)
            bound = "≥ " if estimate is not None and not estimate.seed_variance_known else ""
            base_seeds = _baseline_seeds(groups, row.task)
            notes.append(f"`{row.group}` ({row.task}): {label} {delta:+.4f}: the {report_role} slice / seeds are too "
                         f"small to detect a delta of this size (MDE {bound}{mde:.4f} at {power:.0%} power, two-sided "
                         f"alpha {alpha:g}, Holm not included; {row.paired_runs} + {base_seeds} seeds on "
                         f"{row.rows:.0f} rows / {row.queries:.0f} queries)")
    return notes


def _baseline_seeds(groups, task: str) -> int:
    """Paired runs of the task's baseline group (the row whose note starts with `baseline`)."""
    base = groups[(groups["task"] == task) & groups["note"].fillna("").str.startswith("baseline")]
    return int(base["paired_runs"].iloc[0]) if len(base) else 0
