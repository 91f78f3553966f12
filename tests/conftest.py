"""Hypothesis profiles for the fuzzers (tests/test_fuzz.py, tests/test_hostile.py).

    python -m pytest -q tests/test_fuzz.py tests/test_hostile.py            # "ci": reproducible
    HYPOTHESIS_PROFILE=soak python -m pytest -q tests/test_fuzz.py tests/test_hostile.py

"ci" (the default) is derandomized, so every CI run checks the same examples and
a failure reproduces on any machine.  Its max_examples (2000) is what the main
gradient fuzzer runs; the other fuzz tests take a fixed share of it (see
`share` in test_fuzz.py and test_hostile.py): 600 programs, 600 Jacobians,
100 random byte strings through the CLI and so on, 3,200 expressions in all.
"soak" runs 100,000 examples per test (or SOAK_EXAMPLES) with fresh randomness on every run, for
hunting bugs overnight; a failure it finds is printed with a reproduction blob
and saved in .hypothesis/ (hypothesis' example database) so the next run
replays it first.

Note: a hypothesis test anywhere under tests/ that does not set max_examples
itself gets the profile's value (2000 under "ci").
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW_IS_EXPECTED = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]

settings.register_profile("ci", max_examples=2000, deadline=None, derandomize=True,
                          suppress_health_check=_SLOW_IS_EXPECTED, print_blob=True)
settings.register_profile("soak", max_examples=int(os.environ.get("SOAK_EXAMPLES", 100_000)), deadline=None, derandomize=False,
                          suppress_health_check=_SLOW_IS_EXPECTED, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
