"""brandloop core: settings, the domain model, errors, the registry and the artifact store."""

__version__ = "0.1.0"
