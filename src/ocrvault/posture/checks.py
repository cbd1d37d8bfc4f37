"""The checklist's judgments: each function turns the facts of one question into an
:class:`~ocrvault.posture.model.Entry`, with no I/O, so that a test flips one fact and
sees the entry change. A ``warn`` or ``fail`` names the setting or command that fixes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ocrvault.config import Settings
from ocrvault.posture.facts import (
    AuditFacts,
    Connection,
    MasterKeyFacts,
    ReaperFacts,
    RetentionFacts,
    TenantKeyFacts,
    Transport,
    WebhookFacts,
)
from ocrvault.posture.model import QUESTIONS, Check, Entry, EvidenceValue, Status

# Expired data must be gone within a minute of its expiry (docs/security.md, Retention).
DELETION_DEADLINE_SECONDS = 60.0
# Beyond these the sandbox still holds, but one hostile file may tie up a worker long.
SANDBOX_CEILING_SECONDS = 600.0


def entry(check: Check, status: Status, answer: str, evidence: Mapping[str, EvidenceValue],
          fix: str | None = None) -> Entry:
    return Entry(id=check, question=QUESTIONS[check], status=status, answer=answer,
                 fix=fix if status is not Status.OK else None, evidence=dict(evidence))


def transport(facts: Transport | None) -> Entry:
    if facts is None:
        return entry(
            Check.TRANSPORT, Status.WARN,
            "This process was not started by `ocrvault serve`, so how its clients connect "
            "is not known here.", {"mode": "unknown"},
            "Serve with `ocrvault serve --tls-cert F --tls-key F`, or `--behind-proxy` with "
            "OCRVAULT_TRUSTED_PROXIES naming the TLS proxy.")
    evidence: dict[str, EvidenceValue] = {"mode": facts.mode, "bind": facts.host,
                                          "port": facts.port}
    if facts.mode == "tls":
        evidence["tls_minimum_version"] = facts.tls_minimum_version
        return entry(Check.TRANSPORT, Status.OK,
                     f"Clients connect over HTTPS only, {facts.tls_minimum_version} or later.",
                     evidence)
    if facts.mode == "proxy":
        trusted = [p.strip() for p in facts.trusted_proxies.split(",") if p.strip()]
        evidence["trusted_proxies"] = trusted
        if "*" in trusted or not trusted:
            return entry(
                Check.TRANSPORT, Status.WARN,
                "A TLS proxy is said to front the server, but X-Forwarded-* headers are "
                "believed from any address.", evidence,
                "Set OCRVAULT_TRUSTED_PROXIES to the TLS proxy's own address(es).")
        return entry(Check.TRANSPORT, Status.OK,
                     f"Behind a TLS proxy; forwarded headers are trusted from "
                     f"{', '.join(trusted)} only.", evidence)
    if facts.loopback:
        return entry(
            Check.TRANSPORT, Status.WARN,
            f"Plain HTTP on the loopback address {facts.host}: nothing crosses the network, "
            "but no client off this machine can reach it securely.", evidence,
            "Serve with --tls-cert/--tls-key (TLS 1.2+), or put a TLS proxy in front with "
            "--behind-proxy and OCRVAULT_TRUSTED_PROXIES.")
    return entry(
        Check.TRANSPORT, Status.FAIL,
        f"Plain HTTP on {facts.host}: documents cross the network unencrypted.", evidence,
        "Serve with --tls-cert/--tls-key, or --behind-proxy with OCRVAULT_TRUSTED_PROXIES.")


def encryption_at_rest(settings: Settings, database: str) -> Entry:
    blobs = (f"s3://{settings.s3_bucket}/{settings.s3_prefix}" if settings.blob_store == "s3"
             else str(settings.blob_dir.resolve()))
    return entry(
        Check.ENCRYPTION_AT_REST, Status.OK,
        "Every stored file, result and output is sealed with AES-256-GCM under its own "
        "job's data key, and nothing in clear is written to disk or a temporary file.",
        {"cipher": "AES-256-GCM", "key_bits": 256, "data_key": "one per job, stored "
         "wrapped; deleting it shreds every copy", "aad": "tenant, job, object kind, key "
         "version", "blob_store": settings.blob_store, "blob_location": blobs,
         "database": database, "temporary_files": "none: uploads are held in memory and "
         "the decode sandbox writes no file"})


def master_key(facts: MasterKeyFacts) -> Entry:
    evidence: dict[str, EvidenceValue] = {
        "provider": facts.provider, "keyring": facts.keyring_source,
        "keyring_inside_data_dir": facts.keyring_beside_data,
        "keyring_file_mode": facts.keyring_file_mode,
        "keyring_versions": [str(v) for v in facts.keyring_versions],
        "keyring_primary": facts.keyring_primary,
        "key_id": facts.key_id, "provider_key_version": facts.provider_version,
        # Whatever the provider: the MAC keys are derived in process, never sent to it.
        "keyring_protects": "the audit log's MAC keys (HKDF from the keyring's master key, "
                            "whatever the provider), webhook signing secrets, and data keys "
                            "wrapped before tenant keys" + (
                                "; and the tenant keys" if facts.provider == "keyring" else "")}
    if facts.unavailable is not None:
        evidence["unavailable"] = facts.unavailable
        return entry(Check.MASTER_KEY, Status.FAIL,
                     f"The {facts.provider} master-key provider does not answer, so no new "
                     "data can be sealed.", evidence,
                     "Restore access to the provider named by OCRVAULT_KEY_PROVIDER "
                     "(OCRVAULT_PKCS11_* or OCRVAULT_KMS_*).")
    if facts.keyring_file_mode not in (None, "0600", "0400"):
        return entry(Check.MASTER_KEY, Status.FAIL,
                     f"The keyring file {facts.keyring_source} may be read by other users "
                     f"(mode {facts.keyring_file_mode}).", evidence,
                     f"chmod 600 {facts.keyring_source}")
    where = {"keyring": f"the keyring at {facts.keyring_source}",
             "pkcs11": "an HSM through PKCS#11", "aws-kms": "AWS KMS"}[facts.provider]
    if facts.keyring_beside_data:
        return entry(Check.MASTER_KEY, Status.WARN,
                     f"Tenant keys are wrapped by {where}, and the keyring file lies inside "
                     "the data dir, so a copy of that folder holds the data and its keys.",
                     evidence,
                     "Set OCRVAULT_KEYRING_PATH to a file outside OCRVAULT_DATA_DIR (or give "
                     "the keys in OCRVAULT_MASTER_KEY, or use OCRVAULT_KEY_PROVIDER=pkcs11 or "
                     "aws-kms).")
    audit_mac = ("" if facts.provider == "keyring" else
                 f"; the audit log's MAC key still derives from the keyring at "
                 f"{facts.keyring_source}")
    return entry(Check.MASTER_KEY, Status.OK,
                 f"Tenant keys are wrapped by {where}, kept apart from the data{audit_mac}.",
                 evidence)


def tenant_keys(facts: TenantKeyFacts) -> Entry:
    return entry(
        Check.TENANT_KEYS, Status.OK,
        "Each tenant has its own key under the master key (or the tenant's own KMS key), "
        "and each job's data key is wrapped under a per-tenant epoch key.",
        {"key_store": facts.key_store, "tenants_with_a_key": facts.tenants,
         "wrapped_by": {k: v for k, v in sorted(facts.wrapped_by.items())},
         "epoch_keys": facts.epoch_keys, "epoch_seconds": facts.epoch_seconds,
         "offboarded_tenants": facts.offboarded})


def access(roles: Mapping[str, Sequence[str]], active_keys: Mapping[str, int]) -> Entry:
    evidence: dict[str, EvidenceValue] = {
        f"role_{role}": sorted(scopes) for role, scopes in sorted(roles.items())}
    evidence["active_keys"] = {env: count for env, count in sorted(active_keys.items())}
    evidence["secrets_stored"] = "SHA-256 digests only; keys carry a prefix and checksum"
    return entry(Check.ACCESS, Status.OK,
                 "Every API key carries scopes from a role (admin, developer, reviewer, "
                 "auditor), is stored as a hash only, and sees only its own tenant.", evidence)


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def retention(facts: RetentionFacts) -> Entry:
    evidence: dict[str, EvidenceValue] = {
        "default": dict(facts.defaults), "test_mode_ceiling_seconds": facts.test_ceiling_seconds,
        "key_overrides": facts.key_overrides}
    longer: list[str] = []
    for environment, policy in sorted(facts.by_environment.items()):
        evidence[environment] = dict(policy)
        longer += [f"{environment}.{kind}" for kind, value in policy.items()
                   if value > facts.defaults.get(kind, 0)]
    for where, kinds in sorted(facts.longer_than_default.items()):
        longer += [f"{where}.{kind}" for kind in kinds]
    if facts.longer_than_default:
        evidence["longer_than_default"] = sorted(
            f"{where}: {', '.join(kinds)}" for where, kinds in facts.longer_than_default.items())
    named = "live" if "live" in facts.by_environment else "test" if facts.by_environment \
        else "defaults"
    live = facts.by_environment.get(named, facts.defaults)
    summary = (f"{named}: input {_duration(live['input'])}, result {_duration(live['result'])}, "
               f"outputs {_duration(live['outputs'])}, job records "
               f"{_duration(live['job_metadata'])}; test data at most 1 h")
    if longer:
        return entry(Check.RETENTION, Status.WARN,
                     f"Some data is kept longer than the defaults ({', '.join(longer)}); "
                     f"{summary}.", evidence,
                     "Shorten the policy with PATCH /v1/retention (scope policies:manage), "
                     "e.g. {\"result\": \"P1D\"}, for each environment named.")
    return entry(Check.RETENTION, Status.OK, f"Kept no longer than the defaults ({summary}).",
                 evidence)


def audit_log(facts: AuditFacts) -> Entry:
    at = facts.verified_at.isoformat().replace("+00:00", "Z")
    chains = {chain.chain: (f"verified up to entry {chain.head_pos} at {at}"
                            if chain.tamper is None else f"TAMPERED: {chain.tamper}")
              for chain in facts.chains}
    evidence: dict[str, EvidenceValue] = {
        "verified_at": at, "chains": dict(chains),
        "entries_verified": sum(chain.entries for chain in facts.chains),
        "retention_days": facts.retention_days,
        "scheme": "one hash chain per tenant, each entry and head signed (HMAC-SHA256)"}
    broken = [chain for chain in facts.chains if chain.tamper is not None]
    if broken:
        first = broken[0]
        return entry(Check.AUDIT_LOG, Status.FAIL,
                     f"The audit chain {first.chain} does not verify: {first.tamper}.", evidence,
                     "Investigate with `ocrvault audit verify` (it names each chain's first "
                     "altered entry) and compare with your last `ocrvault audit export`.")
    if not facts.chains:
        return entry(Check.AUDIT_LOG, Status.OK,
                     f"The audit log is hash-chained and signed; no entry exists yet ({at}).",
                     evidence)
    heads = ", ".join(f"{c.chain} up to entry {c.head_pos}" for c in facts.chains)
    return entry(Check.AUDIT_LOG, Status.OK,
                 f"Every audit chain verifies ({heads}) at {at}; entries are kept "
                 f"{facts.retention_days} days.", evidence)


def reaper(facts: ReaperFacts) -> Entry:
    evidence: dict[str, EvidenceValue] = {
        "interval_seconds": facts.interval_seconds, "overdue_jobs": facts.overdue_jobs,
        "oldest_overdue_seconds": (None if facts.oldest_overdue_seconds is None
                                   else round(facts.oldest_overdue_seconds, 1)),
        "scheduler_lease_owner": facts.scheduler_owner,
        "scheduler_lease_expires": (None if facts.scheduler_lease_expires is None
                                    else facts.scheduler_lease_expires.isoformat())}
    lag = facts.oldest_overdue_seconds or 0.0
    if lag > DELETION_DEADLINE_SECONDS:
        return entry(Check.REAPER, Status.FAIL,
                     f"{facts.overdue_jobs} job(s) hold data that expired up to {lag:.0f} s "
                     "ago and is not yet deleted.", evidence,
                     "Run a scheduler (`ocrvault serve --role scheduler`, or role all) and "
                     "keep OCRVAULT_REAPER_INTERVAL_SECONDS at most 60.")
    if facts.interval_seconds > DELETION_DEADLINE_SECONDS:
        return entry(Check.REAPER, Status.WARN,
                     f"The reaper runs every {facts.interval_seconds:g} s, so expired data "
                     "may outlive its expiry by more than a minute.", evidence,
                     "Set OCRVAULT_REAPER_INTERVAL_SECONDS to 60 or less (default 10).")
    return entry(Check.REAPER, Status.OK,
                 f"The reaper runs every {facts.interval_seconds:g} s and no expired data is "
                 f"waiting longer than {DELETION_DEADLINE_SECONDS:.0f} s.", evidence)


def webhooks(facts: WebhookFacts) -> Entry:
    plain = [f"{e.id} {e.origin} ({e.environment})" for e in facts.endpoints if e.plain_http]
    evidence: dict[str, EvidenceValue] = {
        "signing": "Standard Webhooks v1: HMAC-SHA256 over id, timestamp and body; secrets "
                   "sealed at rest, shown once",
        "ssrf_policy": "https only, every resolved address public, checked at registration "
                       "and before each attempt, no redirects",
        "allow_http": facts.allow_http, "allow_cidrs": list(facts.allow_cidrs),
        "endpoints": [f"{e.id} {e.origin} ({e.environment}, {e.status})"
                      for e in facts.endpoints]}
    if plain:
        evidence["plain_http_endpoints"] = plain
        return entry(Check.WEBHOOKS, Status.WARN,
                     f"Webhooks are signed, but {len(plain)} endpoint(s) receive them over "
                     "plain HTTP.", evidence,
                     "Set OCRVAULT_WEBHOOK_ALLOW_HTTP=false and register those endpoints "
                     "again with https URLs.")
    if facts.allow_http:
        return entry(Check.WEBHOOKS, Status.WARN,
                     "Webhooks are signed, but plain-HTTP webhook URLs are allowed.", evidence,
                     "Set OCRVAULT_WEBHOOK_ALLOW_HTTP=false (development only).")
    cidrs = (f"; private ranges allowed: {', '.join(facts.allow_cidrs)}"
             if facts.allow_cidrs else "")
    return entry(Check.WEBHOOKS, Status.OK,
                 f"Webhooks are signed (Standard Webhooks, HMAC-SHA256) and sent over HTTPS "
                 f"to public addresses only{cidrs}.", evidence)


def file_limits(settings: Settings) -> Entry:
    return entry(
        Check.FILE_LIMITS, Status.OK,
        f"Files are refused before decoding beyond {settings.max_file_bytes:,} bytes, "
        f"{settings.max_pages:,} pages or {settings.max_page_pixels:,} pixels a page, and "
        "only PNG, JPEG, BMP, TIFF, WEBP and PDF, sniffed from the bytes, are read.",
        {"max_file_bytes": settings.max_file_bytes,
         "max_sync_file_bytes": settings.max_sync_file_bytes,
         "max_pages": settings.max_pages, "max_page_pixels": settings.max_page_pixels,
         "max_side_px": settings.max_side_px, "pdf_dpi": settings.pdf_dpi,
         "max_json_body_bytes": settings.max_json_body_bytes,
         "allowed_types": ["png", "jpeg", "bmp", "tiff", "webp", "pdf"],
         "url_input": settings.url_input})


def sandbox(settings: Settings) -> Entry:
    evidence: dict[str, EvidenceValue] = {
        "decode_timeout_seconds": settings.decode_timeout_seconds,
        "decode_cpu_seconds": settings.decode_cpu_seconds,
        "decode_memory_bytes": settings.decode_memory_bytes,
        "isolation": "a child process per decoder, rlimits on memory, CPU and file size, "
                     "no file written; a crash ends that child only",
        "pdf_active_content": "JavaScript, actions, forms and attachments never run"}
    long = [name for name, value in (("OCRVAULT_DECODE_TIMEOUT_SECONDS",
                                      settings.decode_timeout_seconds),
                                     ("OCRVAULT_DECODE_CPU_SECONDS", settings.decode_cpu_seconds))
            if value > SANDBOX_CEILING_SECONDS]
    if long:
        return entry(Check.SANDBOX, Status.WARN,
                     "Files are decoded in a sandbox, but one hostile file may hold a worker "
                     f"for more than {SANDBOX_CEILING_SECONDS:.0f} s.", evidence,
                     f"Set {' and '.join(long)} to {SANDBOX_CEILING_SECONDS:.0f} or less.")
    return entry(Check.SANDBOX, Status.OK,
                 f"Files are decoded in sandboxed child processes limited to "
                 f"{settings.decode_memory_bytes // 2**20:,} MiB, "
                 f"{settings.decode_cpu_seconds} s of CPU and "
                 f"{settings.decode_timeout_seconds:g} s of wall-clock time.", evidence)


def metadata() -> Entry:
    return entry(
        Check.METADATA, Status.OK,
        "Only pixels leave the decode sandbox, so EXIF (GPS included), XMP, IPTC, ICC and "
        "PDF metadata never reach the engine, the store or a result.",
        {"removed": ["exif", "gps", "xmp", "iptc", "icc", "pdf_info"],
         "reported_in": "the result's metadata_removed"})


def residency(settings: Settings, connections: Sequence[Connection]) -> Entry:
    evidence: dict[str, EvidenceValue] = {
        "region": settings.region, "region_urls": dict(settings.region_urls),
        "stores": [f"{c.kind}: {c.target}" for c in connections
                   if c.kind in ("database", "blob store", "key service")],
        "s3_region": settings.s3_region, "kms_region": settings.kms_region}
    if settings.region is None:
        return entry(Check.RESIDENCY, Status.WARN,
                     "Data is processed and stored only on this deployment's own stores, but "
                     "no region is named, so keys do not carry one.", evidence,
                     "Set OCRVAULT_REGION (e.g. eu-central), and OCRVAULT_REGION_URLS for the "
                     "other regions.")
    return entry(Check.RESIDENCY, Status.OK,
                 f"Data is processed and stored in region {settings.region} only; keys of "
                 "another region are refused (421) before any body is read.", evidence)


def backups(facts: TenantKeyFacts, reaper_interval: float) -> Entry:
    bound = (f"retention + {_duration(facts.epoch_seconds)} + 5 min + "
             f"{reaper_interval:g} s")
    evidence: dict[str, EvidenceValue] = {
        "backups_hold": "database and sealed blobs only, never the keyring or key store",
        "epoch_seconds": facts.epoch_seconds, "key_store": facts.key_store,
        "key_store_inside_data_dir": facts.key_store_in_data_dir,
        "unreadable_after": bound}
    if facts.key_store_in_data_dir:
        return entry(Check.BACKUPS, Status.WARN,
                     f"Deleted data is unreadable in any backup within {bound}, but the key "
                     "store lies inside the data dir, so a file copy of that folder keeps "
                     "the epoch keys too.", evidence,
                     "Set OCRVAULT_KEY_STORE_DIR (and OCRVAULT_KEYRING_PATH) outside "
                     "OCRVAULT_DATA_DIR, and keep it out of backups.")
    return entry(Check.BACKUPS, Status.OK,
                 f"Backups never hold keys; deleted or expired data is unreadable in every "
                 f"backup within {bound}.", evidence)


def environments(active_keys: Mapping[str, int], test_ceiling_seconds: int) -> Entry:
    return entry(
        Check.ENVIRONMENTS, Status.OK,
        "Test keys (ocv_test_) see only test data, which is deleted within "
        f"{_duration(test_ceiling_seconds)}, and can never reach, mint or revoke a live key.",
        {"active_keys": {env: count for env, count in sorted(active_keys.items())},
         "test_data_ceiling_seconds": test_ceiling_seconds,
         "separation": "jobs, retention policies and audit entries are per environment"})


def telemetry(connections: Sequence[Connection]) -> Entry:
    return entry(
        Check.TELEMETRY, Status.OK,
        "None: the service connects only to the stores, key service, broker, collectors and "
        "webhook endpoints listed here, all configured by the operator or tenant.",
        {"telemetry": "none sent by default: metrics are scraped from the operator's own "
                      "port, traces go only to a configured OTLP collector",
         "connects_to": [f"{c.kind}: {c.target}" for c in connections]})


def training() -> Entry:
    return entry(Check.TRAINING, Status.OK,
                 "No: documents and text are used only for the job they came with; the "
                 "models are fixed files shipped with the software and are never trained.",
                 {"training": "none", "models": "read-only, from the installed packages"})


def components(versions: Mapping[str, EvidenceValue]) -> Entry:
    engines = versions.get("engines")
    named = [f"{k} {v}" for k, v in engines.items()] if isinstance(engines, dict) else []
    named += [f"{label} {versions.get(key)}" for label, key in (
        ("ONNX Runtime", "onnxruntime"), ("pdfium", "pdfium"), ("Pillow", "pillow"))]
    return entry(Check.COMPONENTS, Status.OK,
                 f"Documents are read by {', '.join(named)} and pikepdf "
                 f"{versions.get('pikepdf')}.", versions)
