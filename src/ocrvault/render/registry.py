"""Every output renderer, found by module: a new format is one module in this package.

A module of ``ocrvault.render`` that defines ``RENDERER`` (a
:class:`~ocrvault.render.base.Renderer`) offers that format; :func:`default_registry`
imports them all once. The registry is an immutable value, rebuilt the same way in any
process that needs one (the worker, the decode sandbox's child), never a dict that code
mutates at run time. A test pins that every :class:`~ocrvault.model.OutputFormat` has
exactly one renderer.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from functools import cache
from types import MappingProxyType

from ocrvault.model import Document, OutputFormat
from ocrvault.render.base import Renderer, SourceFile


class RendererRegistry:
    def __init__(self, renderers: Iterable[Renderer]) -> None:
        by_format: dict[OutputFormat, Renderer] = {}
        for renderer in renderers:
            if renderer.format in by_format:
                raise ValueError(f"two renderers for {renderer.format.value!r}")
            by_format[renderer.format] = renderer
        self._by_format: Mapping[OutputFormat, Renderer] = MappingProxyType(by_format)

    @classmethod
    def discover(cls, package: str = __package__ or "ocrvault.render") -> RendererRegistry:
        """The ``RENDERER`` of every module in ``package``."""
        found: list[Renderer] = []
        for module_info in pkgutil.iter_modules(importlib.import_module(package).__path__):
            module = importlib.import_module(f"{package}.{module_info.name}")
            renderer = getattr(module, "RENDERER", None)
            if renderer is not None:
                found.append(renderer)
        return cls(found)

    @property
    def formats(self) -> frozenset[OutputFormat]:
        return frozenset(self._by_format)

    def get(self, fmt: OutputFormat) -> Renderer:
        """The renderer of ``fmt``; ``KeyError`` if none was registered."""
        return self._by_format[fmt]


@cache
def default_registry() -> RendererRegistry:
    return RendererRegistry.discover()


def render_isolated(fmt: OutputFormat, document_json: bytes, source: SourceFile) -> bytes:
    """Render ``fmt`` of the document (its JSON) from ``source``: the entry point the decode
    sandbox's child runs. The document crosses the pipe as JSON: pydantic writes and reads
    it in native code, where pickling a result of many thousand words both ways took
    three times as long."""
    return default_registry().get(fmt).render(Document.model_validate_json(document_json),
                                              source)
