"""Vocabularies every layer shares (trial statuses, the metric catalogue); imports nothing heavy (no torch)."""
