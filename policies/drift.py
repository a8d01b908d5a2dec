"""The shipped drift parameters (``drift.yaml``) for the core CUSUM detector.

The detector itself is core (:mod:`brandloop.templates.cusum`); this module only reads the policy
file a deployment may change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from brandloop.policy_files import read_policy_yaml
from brandloop.templates.cusum import DriftPolicy

DEFAULTS_PATH: Final = Path(__file__).with_name("drift.yaml")


def load_drift_policy(path: Path = DEFAULTS_PATH) -> DriftPolicy:
    return DriftPolicy.model_validate(read_policy_yaml(path))
