"""Reproducible DVC pipeline for normal-vs-abnormal body sounds and autoencoder studies."""

__version__ = "0.1.0"
