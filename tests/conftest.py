"""Shared test setup."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    # The unit tests use tiny tensors: a second OpenMP thread only adds synchronisation, and when
    # other jobs share the 2 cores the threads spin-wait on each other (a step got ~30x slower).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def small_source(monkeypatch):
    """200 glyph test images instead of the 4,000 of the real split, for runs that test
    plumbing (schemas, caches), not accuracy."""
    from ftnotes import recipes
    from ftnotes.glyphs import render_glyphs

    x, y = render_glyphs(200, seed=3)
    monkeypatch.setattr(recipes, "source_test_set", lambda: (x, y))
