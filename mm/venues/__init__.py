"""Venues: the port every venue implements (``base``), the generic venue service the assembly
runs on a venue's connector (``service``, with the user events' routing in ``routing``), the
factory that builds it on the connector ``venue.kind`` names (``factory``) with the
``[venue]`` and ``[feeds]`` settings (``config``), one subpackage per venue, and the embedded
simulator (``sim``).

Outside this package mm imports ``base`` (and the assembly the factory, service and config)
only; a venue subpackage is imported by the factory alone, and venue subpackages do not import
each other (the simulator shares Hyperliquid's published rules: pyproject.toml's contracts).
``service``, ``routing``, ``factory`` and ``config`` sit at the assembly's level (they compose
the generic feeds and execution); a venue subpackage imports only the port and what is below it.
"""
