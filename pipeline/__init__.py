"""Reproducible DVC pipeline for normal-vs-abnormal body sounds and autoencoder studies."""

from pipeline.cpu import pin_kernels

# before numpy, torch or any BLAS loads: every stage, test and prediction runs the same kernels
pin_kernels()

__version__ = "0.1.0"
