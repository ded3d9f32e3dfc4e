"""Reading `/metrics` in tests: a scrape as {(name, labels): value}, and promtool's verdict."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Mapping

import requests
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset[tuple[str, str]]]


class Scrape:
    def __init__(self, text: str) -> None:
        self.text = text
        self.values: dict[Key, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.values[sample.name, frozenset(sample.labels.items())] = sample.value

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 for a series not (yet) exported."""
        return self.values.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum over every series of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, found), v in self.values.items() if n == name and wanted <= found)

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(found)[label] for (n, found) in self.values if n == name and label in dict(found)}


def scrape(base_url: str) -> Scrape:
    response = requests.get(f"{base_url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return Scrape(response.text)


def wait_for_scrape(base_url: str, done: Callable[[Scrape], bool], timeout: float = 30) -> Scrape:
    """Scrape until `done` (other workers' counts arrive within about a second)."""
    deadline = time.monotonic() + timeout
    while True:
        found = scrape(base_url)
        if done(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def deltas(before: Scrape, after: Scrape, name: str, label: str, **labels: str) -> Mapping[str, float]:
    """How much each series of `name` (matching `labels`) moved, by the value of `label`."""
    return {
        value: after.total(name, **labels, **{label: value}) - before.total(name, **labels, **{label: value})
        for value in after.label_values(name, label)
    }


def promtool_check(text: str) -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, (
        "promtool is missing: `apt-get install prometheus` (tests/services/install.sh installs it)"
    )
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"promtool check metrics:\n{result.stdout}{result.stderr}"
