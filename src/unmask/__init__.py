"""unmask: a reproducible experiment pipeline for face-mask removal research."""

__version__ = "0.1.0"
