"""The data and training stages, each a plain function of a :class:`StageContext`.

Use them alone from Python, or chained by :func:`opencharacter.pipeline.run_pipeline`. Every
stage reads and writes named files in the run directory and resumes from what is there.
"""

from opencharacter.stages._context import Progress, ProgressCallback, StageContext
from opencharacter.stages._engine import Dispatcher, RetryPolicy
from opencharacter.stages.distill import run_distill
from opencharacter.stages.dpo_sft import run_dpo, run_sft, run_sft_data
from opencharacter.stages.introspect import run_introspect
from opencharacter.stages.prompts import is_near_duplicate, parse_numbered, run_prompts

__all__ = [
    "Dispatcher",
    "Progress",
    "ProgressCallback",
    "RetryPolicy",
    "StageContext",
    "is_near_duplicate",
    "parse_numbered",
    "run_distill",
    "run_dpo",
    "run_introspect",
    "run_prompts",
    "run_sft",
    "run_sft_data",
]
