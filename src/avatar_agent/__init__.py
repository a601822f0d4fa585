"""avatar-agent: real-time video support calls with an affect-aware avatar."""

__version__ = "0.1.0"
