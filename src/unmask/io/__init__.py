"""Small I/O helpers shared by every stage: atomic writes, image decoding, Parquet shards."""
