"""The seeded fault campaign: 200 faulty sessions over pyvisa-py, and the three invariants hold."""

from __future__ import annotations

from toolkit.delivery.campaign import run_fault_campaign


def test_fault_campaign_keeps_every_invariant(demo_store, capsys):
    result = run_fault_campaign(demo_store, 200, seed=2026, minutes=0.1)
    with capsys.disabled():
        print("\n" + result.table())
    assert result.runs == 200
    assert result.records == 200 and result.open_records == 0
    assert not result.violations, result.violations[:5]
    # the campaign exercised every path: clean completions, several abort reasons, unknown states
    assert result.completed >= 10
    assert len(result.aborted) >= 4
    assert sum(result.faults.values()) == 200
