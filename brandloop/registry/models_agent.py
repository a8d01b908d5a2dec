"""Registry tables owned by the agent area (none yet beyond the core tables in models.py)."""

from brandloop.registry.models import Base

__all__ = ["Base"]
