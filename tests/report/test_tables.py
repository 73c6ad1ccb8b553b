"""The LDS table and merged shards' LDS on hand-made summaries: sign estimation alone is its own
row (one per distinct bank and targets), and shards merge to the mean over all their targets."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brittle.report.aggregate import merged_lds
from brittle.report.tables import SIGN_ALONE, lds_markdown, lds_rows


def _summary(alone: list[float]) -> pd.DataFrame:
    methods = ["ESVM MoCo (1)", "Random (0)", "TRAK d=512 (5)"]
    return pd.DataFrame({
        "dataset": "digits", "arch": "mlp", "task": "remove", "method": methods,
        "lds": [0.07, 0.03, 0.2], "lds_lo": [0.05, 0.01, 0.15], "lds_hi": [0.09, 0.05, 0.25],
        "lds_sign_alone": alone, "lds_sign_alone_lo": [a - 0.02 for a in alone],
        "lds_sign_alone_hi": [a + 0.02 for a in alone]})


def test_one_sign_alone_row_for_one_bank_and_set_of_targets():
    rows = lds_rows(pd.concat([_summary([0.1] * 3), _summary([0.1] * 3).assign(task="mislabel")]))
    assert list(rows["method"]) == ["ESVM MoCo (1)", "Random (0)", "TRAK d=512 (5)", SIGN_ALONE]
    assert rows.iloc[-1][["lds", "lds_lo", "lds_hi"]].tolist() == pytest.approx([0.1, 0.08, 0.12])
    text = lds_markdown(_summary([0.1] * 3))
    assert "| sign estimation alone | 0.100 [0.080, 0.120] |" in text
    assert "| ESVM MoCo (1)         | 0.070 [0.050, 0.090] |" in text


def test_runs_on_other_targets_get_their_own_sign_alone_row():
    rows = lds_rows(_summary([0.1, 0.1, 0.3]))
    assert list(rows["method"][3:]) == [f"{SIGN_ALONE} (targets of ESVM MoCo (1), Random (0))",
                                        f"{SIGN_ALONE} (targets of TRAK d=512 (5))"]
    assert list(rows["lds"][3:]) == pytest.approx([0.1, 0.3])


def test_runs_without_lds_make_no_rows():
    assert lds_rows(_summary([0.1] * 3).assign(lds=None)).empty


def test_merged_shards_lds_is_the_mean_over_all_their_targets():
    shards = pd.DataFrame({"target": range(6), "lds": [0.1, 0.2, 0.3, 0.0, 0.5, 0.1],
                           "lds_sign_alone": [0.2] * 3 + [0.4] * 3})
    got = merged_lds(shards)
    assert got["lds"] == pytest.approx(np.mean([0.1, 0.2, 0.3, 0.0, 0.5, 0.1]))
    assert got["lds_sign_alone"] == pytest.approx(0.3)
    assert got["lds_lo"] <= got["lds"] <= got["lds_hi"]
    assert merged_lds(pd.DataFrame({"target": [1], "support": [3]})) == {}
