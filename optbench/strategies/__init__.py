"""Fine-tuning strategies: what is trained and what is kept, beside the optimizer.

`Strategy.parse("freeze:embedding+replay:0.2")` reads the one-line form used by
`optbench finetune --strategy`, run YAMLs (`strategy:`) and studies (`strategies: [...]`);
`prepare(backbone, config)` applies it and returns the optimizer's parameter groups.
"""

from optbench.strategies.apply import (
    apply_strategy,
    check_strategy,
    flat_parameters,
    named_groups,
    param_groups,
    prepare,
)
from optbench.strategies.groups import check_groups, format_groups, group_table, list_groups
from optbench.strategies.spec import FULL, Strategy

__all__ = ["FULL", "Strategy", "apply_strategy", "check_groups", "check_strategy", "flat_parameters", "format_groups",
           "group_table", "list_groups", "named_groups", "param_groups", "prepare"]
