"""How a run's decision threshold is tuned on dev (`evaluation.threshold`): one for every row, or one per
language with enough dev rows. A constant of its own, so the config schema and the threshold code share it
without either importing the other."""

THRESHOLD_MODES = ("global", "per_language")
