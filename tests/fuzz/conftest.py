"""Hypothesis profiles for the fuzzers: `ci` (the default) is derandomized, so a run is the
same on every machine and a failure reproduces from the test's name alone; `dev` is random
and remembers failing examples; `deep` is random with twenty times the examples.

    HYPOTHESIS_PROFILE=deep .venv/bin/pytest tests/fuzz

The tests size their own budgets with `budget(n)`: n examples under `ci`, scaled by the
profile's max_examples against ci's 100, so one switch deepens every fuzzer.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

BASELINE = 100
SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]

settings.register_profile(
    "ci",
    max_examples=BASELINE,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    # No `explain`: its tracing would double the time of each example.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
settings.register_profile("dev", max_examples=BASELINE, deadline=None, print_blob=True)
settings.register_profile("deep", max_examples=20 * BASELINE, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
