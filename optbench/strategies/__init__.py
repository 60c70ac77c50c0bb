"""Fine-tuning strategies: what is trained and what is kept, beside the optimizer.

`Strategy.parse("freeze:embedding+replay:0.2")` reads the one-line form used by
`optbench finetune --strategy`, run YAMLs (`strategy:`) and studies (`strategies: [...]`).
"""

from optbench.strategies.spec import FULL, Strategy

__all__ = ["FULL", "Strategy"]
