"""The relay's minimum OnDemand agent version (``app.relay.ondemand.too_old``): versions compare
as versions, not strings, with ``packaging`` and without it."""
from __future__ import annotations

import builtins

import pytest

from app.relay.ondemand import too_old

CASES = [
    ("0.1.0", "0.1.0", False),
    ("0.1", "0.1.0", False),  # 0.1 == 0.1.0
    ("0.1.9", "0.2.0", True),
    ("0.10.0", "0.2.0", False),  # 10 > 2, though "0.10" < "0.2" as text
    ("1.0.0", "0.9.9", False),
    ("", "0.1.0", True),  # an agent that says nothing is too old
]


@pytest.mark.parametrize("version, minimum, old", CASES)
def test_versions_compare_as_versions(version, minimum, old):
    assert too_old(version, minimum) is old


@pytest.mark.parametrize("version, minimum, old", CASES)
def test_without_packaging_dotted_numbers_compare_the_same(monkeypatch, version, minimum, old):
    real_import = builtins.__import__

    def no_packaging(name, *args, **kwargs):
        if name.startswith("packaging"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_packaging)
    assert too_old(version, minimum) is old


def test_a_version_that_is_no_version_is_too_old():
    assert too_old("banana", "0.1.0")
