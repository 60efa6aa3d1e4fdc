"""The intent stand-in: ChatterBot corpus questions labelled by topic file, with the fixed split."""

import numpy as np

from transfer_utils.data import datasets


def test_chatterbot_questions_sizes_labels_and_split():
    data = datasets.load_chatterbot_questions()
    parts = (data.train, data.val, data.test)
    assert [len(p) for p in parts] == [503, 73, 144]
    assert len(data.classes) == 16 and {"tech_support", "trivia", "coding", "money"} <= set(data.classes)
    assert all(np.bincount(p.y, minlength=16).min() >= 1 for p in parts)  # every topic in every split
    every = [q for p in parts for q in p.x]
    assert len(set(every)) == len(every)  # each question once, in one split only
    assert "My computer won't turn on." in every
    assert data.classes[data.test.y[data.test.x.index("Robots should die")]] == "ai"
    assert len(datasets.load_chatterbot_questions(min_questions=20).classes) == 10
