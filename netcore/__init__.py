"""netcore: Linux container networking over rtnetlink (library, CLI and per-host agent)."""

__version__ = "0.1.0"
