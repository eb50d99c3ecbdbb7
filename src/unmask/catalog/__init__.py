"""Vocabularies every layer shares (trial statuses, the metric catalogue, the names of the published tables); imports nothing heavy (no torch)."""
