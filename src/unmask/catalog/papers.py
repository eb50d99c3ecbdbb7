"""The names of the seeds' published tables, which a study compares with (``reference: <name>`` in
params.yaml).

Only the names are here, so that reading params.yaml checks a study's ``reference`` without importing
the reports; the tables themselves (source, setting, numbers) are :data:`unmask.reports.paper.PAPER`,
keyed by exactly these names in this order (tests/reports/test_tables.py holds the two together).
"""

from __future__ import annotations

PAPER_TABLES: tuple[str, ...] = (
    "paper_table3",
    "paper_table4",
    "paper_table5",
    "paper_table7",
    "paper_table8",
    "paper_seed002",
    "paper_seed001_segmentation",
    "paper_seed001_conv_type",
    "paper_seed004_table2",
    "paper_seed004_table3",
    "paper_seed003_table41",
    "paper_seed003_unmask",
)
