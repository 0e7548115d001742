"""The garbage collector's set-up for serving: start-up frozen, young collections rarer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from azproxy.server import GC_YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_start_up_objects_are_frozen_and_young_collections_are_rarer(
    restored_gc: None,
) -> None:
    built_at_start: tuple[object, list[int], dict[str, int]] = object(), [], {}
    _, middle, old = gc.get_threshold()
    settle_heap()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, old)
    frozen = gc.get_freeze_count()
    assert frozen > 0
    # Frozen objects are in no generation, so no collection walks them again.
    assert all(tracked is not built_at_start[1] for tracked in gc.get_objects())
    assert gc.isenabled()


def test_cycles_made_after_start_up_are_still_collected(restored_gc: None) -> None:
    settle_heap()
    node: list[object] = []
    node.append(node)
    del node
    assert gc.collect() >= 1
