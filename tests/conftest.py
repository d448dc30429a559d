from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CHROMIUM = Path("/usr/bin/chromium")


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test (with the reason) when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: this test needs the shared data beside the repository")
    return path


@pytest.fixture
def one_thread():
    """Run the test on one torch thread: on a busy 2-core machine, one thread is several times faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sync_api():
    """Playwright's sync API for the browser tests, or skip (with the reason) without playwright or Chromium."""
    try:
        from playwright import sync_api
    except ImportError:
        pytest.skip("playwright is not installed: `.venv/bin/pip install playwright` (or `pip install -e '.[test]'`)")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: `apt-get install -y chromium` (make test does this where apt works)")
    return sync_api
