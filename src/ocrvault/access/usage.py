"""When a key's ``last_used_at`` is written: at most once a minute per key and process.

The column is informational; writing it on every request would queue each request behind
the database's single writer. Reading the row's value is not enough to decide: a burst
of requests with one key all read the same stale value before any of them commits, and
each would write it (the first burst after a key's first use, and again each minute).
So the process remembers which keys it has just marked, and one request of a burst
writes.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

TOUCH_EVERY = timedelta(minutes=1)
# Keys remembered at most: past it, those whose minute is over are forgotten, and all of
# them if that is not enough (the cost: some requests write the column again).
_REMEMBERED = 4096


class KeyUse:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._marked: dict[str, datetime] = {}

    def due(self, key_id: str, last_used_at: datetime | None, now: datetime) -> bool:
        """Whether this request writes the key's last use; True for one request a minute."""
        with self._lock:
            marks = [at for at in (last_used_at, self._marked.get(key_id)) if at is not None]
            if marks and now - max(marks) <= TOUCH_EVERY:
                return False
            if len(self._marked) >= _REMEMBERED:
                recent = {k: at for k, at in self._marked.items() if now - at <= TOUCH_EVERY}
                self._marked = recent if len(recent) < _REMEMBERED else {}
            self._marked[key_id] = now
            return True
