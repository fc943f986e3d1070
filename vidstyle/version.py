"""The package's version, a leaf: any module reads it without importing the whole API."""

__version__ = "0.1.0"
