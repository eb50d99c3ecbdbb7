"""Reports of the studies: re-evaluation from checkpoints, tables in the paper's layout, figures."""

from unmask.reports.evaluate import evaluate_study, load_samples
from unmask.reports.paper import PAPER, PaperColumn, PaperTable, paper_table

__all__ = ["PAPER", "PaperColumn", "PaperTable", "evaluate_study", "load_samples", "paper_table"]
