"""Reports of the studies: tables in the paper's layout, figures, the published numbers beside ours.

What they show is measured by :mod:`unmask.evaluation` (re-evaluation from checkpoints, champions, end
to end), one layer below.
"""

from unmask.reports.paper import PAPER, PaperColumn, PaperTable, paper_table

__all__ = ["PAPER", "PaperColumn", "PaperTable", "paper_table"]
