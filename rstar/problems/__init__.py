"""Math problems in: sources and column mappings, stable ids, dedup, decontamination.

Synthesis of new problems with a consistency filter (docs/method.md §4) is in
``rstar.problems.synthesis`` (not imported here: it pulls in the model backends).
"""

from rstar.problems.decontam import Contamination, Decontaminator
from rstar.problems.ids import normalize_question, problem_id
from rstar.problems.layouts import FORMATS, ProblemFormat, columns_format, detect_format
from rstar.problems.loading import LoadReport, LoadResult, ProblemSource, load_problems
from rstar.problems.readers import RawRecord, SourceError, iter_records

__all__ = [
    "FORMATS",
    "Contamination",
    "Decontaminator",
    "LoadReport",
    "LoadResult",
    "ProblemFormat",
    "ProblemSource",
    "RawRecord",
    "SourceError",
    "columns_format",
    "detect_format",
    "iter_records",
    "load_problems",
    "normalize_question",
    "problem_id",
]
