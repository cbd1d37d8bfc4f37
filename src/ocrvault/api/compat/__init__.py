"""Vendor front doors: Azure AI Vision Read 3.2, Azure Document Intelligence
``prebuilt-read`` and ABBYY Cloud OCR SDK, so that the vendors' own clients work
unmodified with a changed endpoint and key.

Each module only translates: the vendor's request into the same service calls as /v1
(the same JobService, the same key check with every restriction, the same audit), and
the result or error back into the vendor's shapes. Nothing here stores anything.
The routes stay out of ocrvault's OpenAPI document: their contract is the vendor's.
"""

from ocrvault.api.compat import abbyy, azure_read, document_intelligence

routers = (azure_read.router, document_intelligence.router, abbyy.v1_router,
           abbyy.v2_router, abbyy.results_router)

__all__ = ["routers"]
