"""The cyclic collector is paused around an import or a verify scan, and always restored."""

from __future__ import annotations

import gc

import pytest

from ledger.collector import collector_paused


def test_the_collector_is_off_inside_and_back_on_after_even_when_the_block_fails() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("a refused line")
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
