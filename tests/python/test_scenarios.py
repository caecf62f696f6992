"""Every shared scenario (tests/scenarios/*.json) against the reference service
that run.sh started with EDRLINK_TEST_FAULTS=1: one case per file. A step kind
the runner does not implement fails its scenario (never a skip). The
session-finish hook in conftest.py prints ``scenarios: N passed, M failed``."""

from __future__ import annotations

import pathlib

import pytest

import scenarios
from conftest import Admin

FILES = scenarios.files()
RESULTS: dict = {}


def test_scenario_files_exist() -> None:
    assert FILES, f"no scenario files in {scenarios.SCENARIOS}"


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_scenario(path: pathlib.Path, admin: Admin) -> None:
    RESULTS[path.name] = "running"
    try:
        scenarios.Runner(admin.url, admin.key).run(path)
    except Exception as e:
        RESULTS[path.name] = f"{type(e).__name__}: {e}" if not isinstance(e, scenarios.StepFailed) else str(e)
        raise
    RESULTS[path.name] = None
