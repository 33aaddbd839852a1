"""Gold queries that a careful reading finds wrong for their question (`gold_errors.json`: item, reason).

They stay in the headline (every judged item counts, as a reader of the data would score it); a
second, stated figure leaves them out (`Task.excluded`), so a reader sees how much they move it.
Item ids are the rows' `row_index` in the vendored sql-create-context file (predictions' `id`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

FILE = Path(__file__).with_name("gold_errors.json")


@functools.cache
def gold_errors(path: Path = FILE) -> dict[int, str]:
    """item id -> why its gold query is wrong; a malformed file is named with what was expected."""
    try:
        entries = json.loads(path.read_text())
        return {int(e["item"]): str(e["reason"]) for e in entries}
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{path}: expected a JSON list of {{\"item\": <row id>, \"reason\": <text>}} ({e})") from None


def is_gold_error(row: dict) -> bool:
    """Whether a SQL row (by its `row_index`) is on the gold-error list.

    >>> is_gold_error({"row_index": 3147}), is_gold_error({"row_index": 0})
    (True, False)
    """
    return row.get("row_index") in gold_errors()
