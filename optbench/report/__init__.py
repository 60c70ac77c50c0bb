"""The study report: results.csv, PNG figures, report.md and a self-contained report.html."""

from optbench.report.build import build_report

__all__ = ["build_report"]
