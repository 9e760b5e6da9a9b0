"""How many examples a fuzzer runs: its budget under the `ci` profile, scaled by the profile
loaded (tests/fuzz/conftest.py), with the health checks a slow, fixture-backed fuzzer trips
turned off."""

from __future__ import annotations

from hypothesis import settings

from tests.fuzz.conftest import BASELINE, SLOW_OK


def budget(examples: int) -> settings:
    loaded = settings.default
    assert loaded is not None  # conftest.py loaded a profile
    scaled = max(1, examples * loaded.max_examples // BASELINE)
    return settings(max_examples=scaled, deadline=None, suppress_health_check=SLOW_OK)
