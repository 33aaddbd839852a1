"""The SQL task (`task`) and its execution match, in small modules (none needs torch):

- `schema`: the one parser of a `CREATE TABLE` context (tables, columns, declared types, spellings);
- `keys`: the primary and foreign keys a reader assumes, inferred from names and the gold's joins;
- `values`: values derived from a gold query's literals (the test-suite fuzzer's way);
- `synthetic`: small SQLite databases that respect those keys, several kinds per item;
- `sandbox`: where model output runs (read-only, in memory, every SQLite limit set, a step budget);
- `match`: gold vs predicted results on those databases, one word per outcome, and the gold audit;
- `task`: the task's data split, scoring, prepare-time filter and audit, and its declaration `TASK`.
"""

from ftlib.tasks.sql.match import sql_error_kind, sql_execution_match
from ftlib.tasks.sql.task import TASK, schema_overlap, score_sql, sql_row, sql_split_of, sql_tables

__all__ = [
    "TASK",
    "schema_overlap",
    "score_sql",
    "sql_error_kind",
    "sql_execution_match",
    "sql_row",
    "sql_split_of",
    "sql_tables",
]
