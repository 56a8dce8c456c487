"""Venues: the port every adapter implements (``base``), the factory that builds the adapter
``venue.kind`` names (``factory``) with the ``[venue]`` and ``[feeds]`` settings (``config``),
one subpackage per venue, and the embedded simulator (``sim``).

Outside this package mm imports ``base`` (and the assembly the factory and config) only; a
venue subpackage is imported by the factory alone, and venue subpackages do not import each
other (the simulator shares Hyperliquid's published rules: pyproject.toml's contracts).
"""
