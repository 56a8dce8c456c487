"""mm: a market-making and execution service for crypto venues, on Trio."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mm")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
