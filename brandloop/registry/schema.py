"""Every table of the registry in one metadata: the core tables and each area's own.

Alembic's env and the schema test import this module, so a table defined in any of the
modules below is covered by migrations and by the check that migrations match the models.
"""

from brandloop.registry import (
    models_agent,
    models_money,
    models_scale,
    models_service,
    models_studio,
    models_templates,
)
from brandloop.registry.models import Base

__all__ = [
    "Base",
    "models_agent",
    "models_money",
    "models_scale",
    "models_service",
    "models_studio",
    "models_templates",
]
