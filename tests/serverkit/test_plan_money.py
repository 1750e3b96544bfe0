"""`server-kit plan`: one money format ("$1,234/month") everywhere, and a one-line conclusion."""

from __future__ import annotations

import re

import pytest
from codeassist.serverkit.cli import main

MONEY = re.compile(r"\$[\d,.]+(/\w+)?")
GOOD = re.compile(r"\$\d{1,3}(,\d{3})*/month")


def plan_text(capsys, *args: str) -> str:
    assert main(["plan", *args]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("developers", ["10", "50", "100", "2000"])
def test_every_amount_is_dollars_per_month_with_thousands_separators(capsys, developers):
    out = plan_text(capsys, "--developers", developers)
    amounts = [m.group(0) for m in MONEY.finditer(out)]
    assert amounts, out
    bad = [a for a in amounts if not GOOD.fullmatch(a)]
    assert not bad, f"{bad} in:\n{out}"
    assert "$/mo" not in out and "/mo " not in out and not out.rstrip().endswith("/mo")


def conclusion(out: str) -> str:
    lines = [ln for ln in out.splitlines() if ln.startswith("Conclusion: ")]
    assert len(lines) == 1, out
    return lines[0]


def test_small_team_saas_is_cheaper_and_the_break_even_holds(capsys):
    """With spot prices a 7B on H200s costs less a developer than a $19 seat: the line names from when on."""
    line = conclusion(plan_text(capsys, "--developers", "50", "--spot"))
    m = re.search(
        r"for 50 developers Copilot-Business \(\$950/month\) is cheaper than self-hosting .+; "
        r"self-hosting pays from ([\d,]+) developers",
        line,
    )
    assert m, line
    n = int(m.group(1).replace(",", ""))
    assert n > 50
    for team in (n, n + 1, n + 97, 3 * n):  # from there on, every team size (the staircase of whole GPUs)
        assert conclusion(plan_text(capsys, "--developers", str(team), "--spot")).startswith(
            f"Conclusion: for {team:,} developers self-hosting"
        )
    assert (
        "Copilot-Business" in conclusion(plan_text(capsys, "--developers", str(n - 1), "--spot")).split("is cheaper")[0]
    )


def test_when_gpus_cost_more_a_developer_than_a_seat_it_says_never(capsys):
    line = conclusion(plan_text(capsys, "--developers", "50"))
    assert "never pays against Copilot-Business at $19/month a seat" in line and "a developer" in line


def test_large_team_self_hosting_is_cheaper(capsys):
    line = conclusion(plan_text(capsys, "--developers", "2000", "--spot"))
    assert re.search(r"for 2,000 developers self-hosting .+ is cheaper than Copilot-Business", line), line


def test_conclusion_is_in_the_json_too(capsys):
    import json

    data = json.loads(plan_text(capsys, "--developers", "50", "--json", "--spot"))
    assert data["conclusion"].startswith("for 50 developers") and data["break_even_developers"]["Copilot-Business"] > 50
