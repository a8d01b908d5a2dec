"""The simulated image backend the tests run against (see ``tests/conftest.py``'s docstring).

A test about retention, review, money or the API needs a run to finish on any seed; the
procedural renderer's palette misses (an accent on about a third of seeds) would make it stop
about one random seed in a hundred. So the test world renders no accent, and tests of misses
build their own.
"""

from __future__ import annotations

from brandloop.tools.providers.procedural import ProceduralProvider

#: The procedural renderer's accent chance in the test world.
STEADY = 0.0


def steady_procedural() -> ProceduralProvider:
    """The procedural renderer as the test world has it: no off-palette accent on any seed."""
    return ProceduralProvider(accent_chance=STEADY)
