"""Shared settings of the fuzz suite: a bounded example count and a memory budget.

Every reader of outside input must, on any byte string, either return a valid result or raise the
project's own :class:`~hotspot_erc.data.dialogue.DataFormatError` naming the file (and the field
where there is one); never another exception, and never allocate more than
the budget of the ``memory_budget`` fixture (tests/conftest.py) on the way.

Use in a fuzz test file::

    from hypothesis import given, settings

    @settings(settings.get_profile("fuzz"))
    @given(...)
    def test_reader(data, memory_budget):
        with memory_budget():
            ...

``HOTSPOT_ERC_FUZZ_EXAMPLES`` sets the examples per property (default 60, what CI runs);
``HOTSPOT_ERC_FUZZ_EXAMPLES=5000 python3 -m pytest tests/fuzz`` searches far longer.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = int(os.environ.get("HOTSPOT_ERC_FUZZ_EXAMPLES", "60"))

settings.register_profile(
    "fuzz", max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large])
