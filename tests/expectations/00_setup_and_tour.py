"""What the smoke run of 00_setup_and_tour must show."""

import pytest


def check(m: dict) -> None:
    assert m["assets_loaded"] == m["assets_total"] == 9
    assert m["probe_accuracy"] > m["majority_accuracy"] + 0.03
    assert m["gain"] > 0.02 and m["gain"] == pytest.approx(m["probe_accuracy"] - m["bow_accuracy"])
    assert len(m["runs"]) >= 3
