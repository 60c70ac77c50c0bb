"""The old home of the study aggregation, kept so that every import of it keeps working.

Aggregation belongs to the report (`optbench.report.aggregate`): the study writes results, the
report reads them.
"""

from optbench.report.aggregate import (
    STUDY_JSON,
    StudyData,
    flatten,
    forgetting_columns,
    grid_edge,
    holm,
    mean_ci,
    paired_test,
    refinement_by_pair,
)

__all__ = ["STUDY_JSON", "StudyData", "flatten", "forgetting_columns", "grid_edge", "holm", "mean_ci", "paired_test",
           "refinement_by_pair"]
