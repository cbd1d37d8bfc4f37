"""What `ocrvault serve` hands uvicorn: the guarded protocol, and room for its connections."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocrvault.api.server import SPARE_FILES, GuardedProtocol, fit_open_files
from ocrvault.cli import transport_options
from ocrvault.config import Settings


def test_serve_uses_the_guarded_protocol_with_the_settings_limits(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, header_timeout_seconds=3, max_headers=50,
                        max_header_bytes=8192, max_connections=77, keep_alive_seconds=4)
    options = transport_options(settings, None, None, behind_proxy=False)
    protocol = options["http"]
    assert issubclass(protocol, GuardedProtocol)
    assert (protocol.header_timeout, protocol.max_headers, protocol.max_header_bytes,
            protocol.max_connections) == (3, 50, 8192, 77)
    assert options["limit_concurrency"] == 77
    assert options["timeout_keep_alive"] == 4


@pytest.fixture
def low_soft_limit() -> Iterator[int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_open_files_limit_is_raised_to_fit_the_connections(low_soft_limit: int) -> None:
    hard = low_soft_limit
    if hard != resource.RLIM_INFINITY and hard < 1000 + SPARE_FILES:
        pytest.skip("the hard limit leaves no room to raise")
    assert fit_open_files(1000) == 1000
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == 1000 + SPARE_FILES


def test_connections_beyond_the_hard_limit_are_cut_to_what_fits(low_soft_limit: int) -> None:
    hard = low_soft_limit
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard limit")
    assert fit_open_files(hard * 2) == hard - SPARE_FILES
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
