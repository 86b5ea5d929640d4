"""Short crash variant for the test command; `make soak` runs 25+ trials."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "soak"))


def test_kill_9_never_under_counts_and_loses_no_audit_row():
    import crash

    out = crash.run(trials=3, seed=7)
    assert out["vendor_calls_seen"] > 0, "the load reached the vendor"
    assert out["trials_under_counted"] == 0, out["per_trial"]
    assert out["audit_rows_lost"] == 0, out["per_trial"]
