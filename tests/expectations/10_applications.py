"""What the smoke run of 10_applications must show."""


def check(m: dict) -> None:
    # customer service: few-shot MiniLM routing leaves the commonest intent and TF-IDF behind
    assert m["routing_acc_minilm"] > m["routing_constant_acc"] + 0.2
    assert m["routing_acc_minilm"] > m["routing_acc_tfidf"]
    # the validation threshold buys accuracy and hands the out-of-scope questions over more often
    assert m["handover_answered_acc"] > m["answer_all_acc"] + 0.1
    assert m["unknown_handed_over"] > m["known_handed_over"]
    assert 0.05 < m["handover_coverage"] < 1.0
    # monitoring: the model really transfers; rates measured on tweets beat rates measured on snippets
    assert m["tweet_acc"] > m["tweet_constant_acc"]
    assert m["share_mae_acc_target"] < m["share_mae_acc_source"]
    assert m["share_slope_cc"] < m["share_slope_acc_target"]  # classify and count shrinks the changes
    assert m["alert_recall"] >= 0.3 and m["alert_precision"] >= 0.3
    # recommendation: far above the commonest topic; in the cold start (titles) MiniLM beats TF-IDF
    assert min(m["p_at_k_minilm_full"], m["p_at_k_tfidf_full"]) > m["p_at_k_constant"] + 0.3
    assert m["p_at_k_minilm_title"] > m["p_at_k_tfidf_title"]
