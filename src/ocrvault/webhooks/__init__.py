"""Signed webhooks that carry no document content, delivered from an outbox.

- ``signing.py``: the Standard Webhooks signature (``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature: v1,<base64 HMAC-SHA256>``) and ``whsec_`` secrets.
- ``secrets.py``: signing secrets sealed under the keyring, never stored in clear.
- ``ssrf.py``: the address guard: HTTPS only, every resolved address checked.
- ``events.py``: event types, content-free payloads, and the outbox write that a job's
  change makes in its own transaction.
- ``delivery.py``: one attempt over HTTP, to the checked address; the retry schedule.
- ``dispatcher.py``: claims due deliveries under a lease and sends them.
- ``service.py``: what the API does with endpoints (scope ``webhooks:manage``).
"""
