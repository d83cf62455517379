"""Shared pytest options: slow checks (minutes long) run only with --run-slow; hypothesis
profiles (the default keeps the suite fast, `--hypothesis-profile=long` draws many more
examples); tests/ on sys.path for the shared strategies (tests/strategies.py)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the property tests skip without hypothesis
    pass
else:
    _common = dict(deadline=None, print_blob=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                          HealthCheck.filter_too_much])
    settings.register_profile("default", max_examples=25, **_common)
    settings.register_profile("long", max_examples=1000, **_common)
    settings.load_profile(os.environ.get("FASTBP_HYPOTHESIS_PROFILE", "default"))


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the tests marked slow (e.g. the README's commands in a fresh clone)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
