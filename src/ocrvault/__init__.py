"""ocrvault: a self-hosted OCR API built to pass a security review."""

__version__ = "0.1.0"
