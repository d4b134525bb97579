"""Scenario files: a projection's test scenarios as JSON, run by the mock
host here (``run_file``, or ``pytest`` through ``scenario_tests``) and by
``projector test COMPONENT.wasm FILES`` on the compiled component, so the
same steps check the Python source and the shipped ``.wasm``.

A scenario may ask for deduplication by CloudEvents identity, as a view's
``dedup`` does: ``"dedup": {"keep": "24h", "time": "record"}`` (both
optional). The format (``docs/scenarios.md``)::

    {"scenario": "what it shows",
     "steps": [
       {"publish": {"type": "OrderPlaced", "subject": "c-1", "data": {...}},
        "expect": "applied"},
       {"redeliver": {"topic": "events", "partition": 0, "offset": 0},
        "expect": "duplicate"},
       {"publish": {...the same "id" and "source"...}, "expect": "duplicate-id"},
       {"publish": {...}, "expect": {"failed": "invalid-data"}},
       {"expect_row": {"subject": "c-1", "row": {...}}},
       {"expect_no_row": {"subject": "c-2"}}
     ]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List

from . import Projection
from .testing import Applied, Dedup, Duplicate, DuplicateId, EventBuilder, Failed, MockHost, parse_keep

PUBLISH_FIELDS = {"type", "id", "source", "subject", "time", "dataschema", "extensions", "data",
                  "data_text", "topic", "partition", "offset", "key", "timestamp_ms"}


class ScenarioError(AssertionError):
    """A step did not go as the scenario says."""


def _builder(fields: Dict[str, Any]) -> EventBuilder:
    unknown = set(fields) - PUBLISH_FIELDS
    if unknown:
        raise ScenarioError(f"unknown publish fields {sorted(unknown)}; known: {sorted(PUBLISH_FIELDS)}")
    builder = EventBuilder(fields["type"])
    for name in ("id", "source", "subject", "time", "dataschema", "topic", "partition", "offset",
                 "timestamp_ms"):
        if name in fields:
            getattr(builder, name)(fields[name])
    for name, value in fields.get("extensions", {}).items():
        builder.extension(name, value)
    if "data" in fields:
        builder.data_json(fields["data"])
    if "data_text" in fields:
        builder.data("text/plain", fields["data_text"].encode())
    if "key" in fields:
        builder.key(None if fields["key"] is None else fields["key"].encode())
    return builder


def _check(outcome: Any, expect: Any, where: str) -> None:
    if expect is None:
        return
    if expect == "applied":
        ok = isinstance(outcome, Applied)
    elif expect == "duplicate":
        ok = isinstance(outcome, Duplicate)
    elif expect == "duplicate-id":
        ok = isinstance(outcome, DuplicateId)
    elif isinstance(expect, dict) and set(expect) == {"failed"}:
        ok = isinstance(outcome, Failed) and outcome.code == expect["failed"]
    else:
        raise ScenarioError(f"{where}: unknown expect {expect!r}")
    if not ok:
        raise ScenarioError(f"{where}: expected {expect!r}, got {outcome!r}")


SCENARIO_FIELDS = {"scenario", "steps", "subject_from_key", "dedup"}


def host_for(scenario: Dict[str, Any], projection: Projection) -> MockHost:
    """A fresh mock host with the settings ``scenario`` asks for."""
    unknown = set(scenario) - SCENARIO_FIELDS
    if unknown:
        raise ScenarioError(f"unknown scenario fields {sorted(unknown)}; known: {sorted(SCENARIO_FIELDS)}")
    dedup = None
    if scenario.get("dedup") is not None:
        settings = scenario["dedup"]
        unknown = set(settings) - {"keep", "time"}
        if unknown:
            raise ScenarioError(f"unknown dedup fields {sorted(unknown)}; known: keep, time")
        try:
            keep = settings.get("keep")
            time = settings.get("time")
            dedup = Dedup(keep_ms=parse_keep("24h" if keep is None else keep),
                          time="record" if time is None else time)
        except (TypeError, ValueError) as err:
            raise ScenarioError(f"{scenario.get('scenario', 'scenario')}: dedup: {err}") from None
    return MockHost(projection, subject_from_key=scenario.get("subject_from_key", False), dedup=dedup)


def run(scenario: Dict[str, Any], host: MockHost) -> None:
    """Run one scenario's steps on ``host``; raises :class:`ScenarioError`."""
    name = scenario.get("scenario", "scenario")
    for index, step in enumerate(scenario["steps"]):
        where = f"{name}, step {index + 1}"
        if "publish" in step:
            _check(host.publish(_builder(step["publish"])), step.get("expect"), where)
        elif "redeliver" in step:
            at = step["redeliver"]
            _check(host.redeliver(at.get("topic", "events"), at.get("partition", 0), at["offset"]),
                   step.get("expect"), where)
        elif "expect_row" in step:
            subject = step["expect_row"]["subject"]
            actual = host.row(subject)
            if actual != step["expect_row"]["row"]:
                raise ScenarioError(f"{where}: row of {subject!r} is {actual!r}, expected {step['expect_row']['row']!r}")
        elif "expect_no_row" in step:
            subject = step["expect_no_row"]["subject"]
            if host.row(subject) is not None:
                raise ScenarioError(f"{where}: {subject!r} has a row {host.row(subject)!r}")
        else:
            raise ScenarioError(f"{where}: unknown step {sorted(step)}")


def load(path: Path) -> List[Dict[str, Any]]:
    """The scenarios of a file: one scenario object, or a list of them."""
    document = json.loads(Path(path).read_text())
    return document if isinstance(document, list) else [document]


def files(paths: Iterable[Path]) -> List[Path]:
    """Every ``*.json`` under ``paths`` (files or directories), sorted."""
    found: List[Path] = []
    for path in map(Path, paths):
        found.extend(sorted(path.rglob("*.json")) if path.is_dir() else [path])
    return found


def run_files(paths: Iterable[Path], projection: Callable[[], Projection]) -> int:
    """Run every scenario under ``paths``, each on a fresh mock host with a
    fresh ``projection()``; returns how many ran."""
    count = 0
    for path in files(paths):
        for scenario in load(path):
            run(scenario, host_for(scenario, projection()))
            count += 1
    return count
