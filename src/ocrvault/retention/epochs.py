"""Destroying epoch keys once nothing under them may live any longer (crypto/tenant_keys.py).

Run by the scheduler beside the reaper. An epoch key goes when its window has ended (plus
COMMIT_GRACE) and no job under it is unfinished or holds a part not yet expired; every
DEK under it, in the database and in every backup of it, then opens nothing. Each
destruction is audited in the tenant's chain.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from ocrvault.audit import Actor, AuditAction, AuditEvent, AuditLog
from ocrvault.clock import Clock
from ocrvault.crypto.tenant_keys import TenantKeys
from ocrvault.store.db import Database
from ocrvault.store.epochs import epoch_still_needed

log = logging.getLogger(__name__)

# A submission wraps its DEK before its row commits: a job wrapped just before a window
# ends may not be visible yet when the window ends. Past this margin, every such row is.
COMMIT_GRACE = timedelta(minutes=5)


class EpochKeyReaper:
    def __init__(self, db: Database, tenant_keys: TenantKeys, audit: AuditLog,
                 clock: Clock) -> None:
        self.db = db
        self.tenant_keys = tenant_keys
        self.audit = audit
        self.clock = clock

    def run_once(self) -> int:
        """Destroy every spent epoch key; returns how many."""
        now = self.clock()
        destroyed = 0
        for tenant_id in self.tenant_keys.tenants():
            for epoch in self.tenant_keys.epochs(tenant_id):
                if self.tenant_keys.epoch_end(epoch) + COMMIT_GRACE > now or epoch_still_needed(
                        self.db, tenant_id, epoch, now):
                    continue
                if self.tenant_keys.destroy_epoch(tenant_id, epoch):
                    destroyed += 1
                    self.audit.record(AuditEvent(
                        AuditAction.EPOCH_KEY_DESTROYED, Actor.system("epoch-keys", tenant_id),
                        target_id=f"epoch:{epoch}",
                        detail={"window_end": self.tenant_keys.epoch_end(epoch).isoformat()}))
        if destroyed:
            log.info("destroyed %d spent epoch keys", destroyed)
        return destroyed
