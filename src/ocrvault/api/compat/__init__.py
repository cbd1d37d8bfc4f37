"""Vendor front doors: Azure AI Vision Read 3.2, Azure Document Intelligence
``prebuilt-read`` and ABBYY Cloud OCR SDK, so that the vendors' own clients work
unmodified with a changed endpoint and key.

Each module only translates: the vendor's request into the same service calls as /v1
(the same JobService, the same key check with every restriction, the same audit), and
the result or error back into the vendor's shapes. Nothing here stores anything.
The routes stay out of ocrvault's OpenAPI document: their contract is the vendor's.
"""

from ocrvault.api.compat import abbyy, azure_read, document_intelligence
from ocrvault.api.problems import ErrorShape

routers = (azure_read.router, document_intelligence.router, abbyy.v1_router,
           abbyy.v2_router, abbyy.results_router)

# Each door's part of the URL space, and its error shape for refusals made before any of
# its routes runs (a path it lacks, a method a path lacks): its client parses no other.
_PREFIXES: tuple[tuple[str, ErrorShape], ...] = (
    ("/vision/", azure_read.azure_error),
    ("/documentintelligence/", document_intelligence.di_error),
    ("/v2/", abbyy.v2_error),
    (f"{abbyy.RESULTS}/", abbyy.v1_error),
)
# ABBYY v1 lives at the root, beside /v1 and /healthz: its own calls only, those served
# here and those of ABBYY's that are not (so that their 404 is one its client reads).
_ABBYY_V1_PATHS = frozenset({getattr(route, "path", "") for route in abbyy.v1_router.routes}
                            | abbyy.NOT_OFFERED)


def error_shape(path: str) -> ErrorShape | None:
    """The error shape of the vendor door ``path`` belongs to; None for ocrvault's own."""
    if path in _ABBYY_V1_PATHS:
        return abbyy.v1_error
    return next((shape for prefix, shape in _PREFIXES
                 if path.startswith(prefix) or path == prefix.rstrip("/")), None)


__all__ = ["error_shape", "routers"]
