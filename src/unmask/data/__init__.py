"""Data: sources (download), alignment, occlusion synthesis, splits and torch Datasets."""
