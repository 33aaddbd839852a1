"""SQL execution match, in four small modules (each importable alone, none needs torch):

- `schema`: the one parser of a `CREATE TABLE` context (tables, columns, declared types, spellings);
- `synthetic`: small SQLite databases filled from a gold query's literals, several per item;
- `sandbox`: where model output runs (read-only, in memory, every SQLite limit set, a step budget);
- `match`: gold vs predicted results on those databases, one word per outcome, and the gold audit.

`ftlib.evals` re-exports what scoring needs (`sql_execution_match`, `audit_gold`, ...).
"""
