"""ordergate: a pre-trade risk and capital-policy gateway for automated trading."""

__version__ = "0.1.0"
