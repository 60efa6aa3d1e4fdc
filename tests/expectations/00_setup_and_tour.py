"""What the smoke run of 00_setup_and_tour must show."""


def check(m: dict) -> None:
    assert m["assets_loaded"] == m["assets_total"] == 10  # every offline asset in data/README.md loads
    assert m["probe_accuracy"] > m["majority_accuracy"] + 0.03
    # the lesson's claim, against its baseline (not the stored "gain" against the formula that made it)
    assert m["probe_accuracy"] > m["bow_accuracy"] + 0.02
    # ... and per run, not only on average: the frozen probe beats bag of words in most runs
    runs = m["runs"]
    wins = sum(r["frozen MiniLM + logistic regression"] > r["bag of words"] for r in runs)
    assert wins > len(runs) / 2
    assert len(m["runs"]) >= 3
