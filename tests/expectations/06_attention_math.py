"""What the smoke run of 06_attention_math must show."""


def check(m: dict) -> None:
    assert m["sdpa_max_abs_diff"] < 1e-5 and m["mha_max_abs_diff"] < 1e-5
    assert m["bert_attention_max_abs_diff"] <= 1e-5  # the bar, float32
    assert m["bert_layers_checked"] == 6 and m["bert_heads_per_layer"] == 12  # every head of MiniLM
    assert m["scaled_softmax_entropy"] > m["unscaled_softmax_entropy"] + 1.0  # unscaled softmax saturates
    assert 0.85 < m["variance_ratio_min"] <= m["variance_ratio_max"] < 1.15  # Var(q·k) ≈ d_k
    assert m["padding_cosine_with_mask"] > 0.99999 > m["padding_cosine_without_mask"]
    assert max(m["padding_attention_share_without_mask"]) > 0.05
    assert 1.5 <= m["time_exponent"] <= 2.5 and 1.8 <= m["memory_exponent"] <= 2.2
    rows = m["timing"]
    assert len(rows) >= 3 and all({"n", "attention_s", "projections_s", "peak_mib"} <= set(r) for r in rows)
    assert [r["n"] for r in rows] == sorted(r["n"] for r in rows)
    assert rows[-1]["peak_mib"] > rows[0]["peak_mib"] * 16  # memory grows much faster than n
