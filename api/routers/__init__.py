"""One router per resource; ``brandloop.api.app`` includes them all under ``/v1``."""
