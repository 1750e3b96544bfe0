"""`server-kit plan`: from team size to peak request rate, GPUs, monthly cost and SaaS break-even.

Requests arrive as a Poisson process: active developers × completion requests per active minute.
The figure to provision for is the 99th-percentile minute: the 0.99 quantile of a Poisson count over
60 s, divided by 60. With the defaults (100 developers, half active at the busy hour, 180 keystrokes a
minute while typing, one request per 5 keystrokes after debounce and cache) that is ≈ 32 req/s.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from statistics import NormalDist

from codeassist.serverkit.plan_options import Option, default_options, option_params_b
from codeassist.serverkit.sizing import GPU_PRICES

__all__ = [
    "DEFAULT_OPTIONS",
    "SAAS_SEAT_PRICES",
    "Option",
    "PlanInputs",
    "money",
    "peak_rps",
    "plan",
    "poisson_quantile",
    "render",
]

HOURS_PER_MONTH = 730.0
SAAS_SEAT_PRICES = {"Copilot-Business": 19.0, "Copilot-Enterprise": 39.0, "Cursor-Business": 40.0}
DEFAULT_OPTIONS, MISSES_SLO = default_options()
# The conclusion weighs SaaS against a 7B or larger: the 1.5B rows are for small cards, and their suggestions are
# not what a SaaS seat buys.
COMPARABLE_PARAMS_B = 7.0
MAX_DEVELOPERS = 100_000  # the break-even search stops here


def money(usd: float, per: str = "month") -> str:
    """The one format for amounts: "$1,234/month"."""
    return f"${usd:,.0f}/{per}"


@dataclass(frozen=True)
class PlanInputs:
    developers: int = 100
    active_fraction: float = 0.5  # share of the team typing in the busiest hour
    keystrokes_per_min: float = 180.0  # while typing
    requests_per_keystroke: float = 0.2  # after debounce and the client cache
    percentile: float = 0.99
    spot: bool = False
    prices: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(GPU_PRICES))
    seat_prices: dict[str, float] = field(default_factory=lambda: dict(SAAS_SEAT_PRICES))
    options: tuple[Option, ...] = DEFAULT_OPTIONS


@lru_cache(maxsize=4096)
def poisson_quantile(mean: float, q: float) -> int:
    """Smallest k with P(X ≤ k) ≥ q for X ~ Poisson(mean), summed in log space (exact for large means)."""
    if mean <= 0:
        return 0
    k = 0
    log_p = -mean
    cdf = math.exp(log_p)
    # Start 10 standard deviations below the mean for large means: the mass below is < 1e-20, so the sum
    # can start there (and stays O(√mean) for the break-even search over big teams).
    if mean > 50:
        k = max(0, int(mean - 10 * math.sqrt(mean)))
        log_p = -mean + k * math.log(mean) - math.lgamma(k + 1)
        cdf = math.exp(log_p)
    while cdf < q:
        k += 1
        log_p += math.log(mean) - math.log(k)
        cdf += math.exp(log_p)
    return k


def _rates(inp: PlanInputs) -> tuple[float, float]:
    mean = inp.developers * inp.active_fraction * inp.keystrokes_per_min * inp.requests_per_keystroke / 60.0
    return mean, poisson_quantile(mean * 60.0, inp.percentile) / 60.0


def peak_rps(inp: PlanInputs) -> float:
    """The req/s of the busy minute to provision for (what `launch` sizes by)."""
    return round(_rates(inp)[1], 1)


def _monthly(o: Option, peak_rps: float, inp: PlanInputs) -> tuple[int, float]:
    """(GPUs, $/month) for option ``o`` at ``peak_rps``."""
    gpus = max(1, math.ceil(peak_rps / o.req_per_s)) * o.gpus_per_replica
    on_demand, spot = inp.prices.get(o.gpu, (math.nan, math.nan))
    return gpus, gpus * (spot if inp.spot else on_demand) * HOURS_PER_MONTH


def _comparable(inp: PlanInputs) -> list[Option]:
    priced = [o for o in inp.options if o.gpu in inp.prices]
    big = [o for o in priced if (option_params_b(o.model) or COMPARABLE_PARAMS_B) >= COMPARABLE_PARAMS_B]
    return big or priced


def _cheapest(inp: PlanInputs) -> tuple[Option, int, float] | None:
    options = _comparable(inp)
    if not options:
        return None
    _, peak = _rates(inp)
    costs = [(o, *_monthly(o, peak, inp)) for o in options]
    return min(costs, key=lambda c: c[2])


def _per_developer(o: Option, inp: PlanInputs) -> float:
    """$/month a developer costs on option ``o`` in a large team (GPUs in proportion to the mean load)."""
    on_demand, spot = inp.prices[o.gpu]
    per_replica = (spot if inp.spot else on_demand) * HOURS_PER_MONTH * o.gpus_per_replica
    per_dev_rps = inp.active_fraction * inp.keystrokes_per_min * inp.requests_per_keystroke / 60.0
    return per_replica * per_dev_rps / o.req_per_s


def _team_served(replicas: int, o: Option, inp: PlanInputs) -> int:
    """The largest team whose peak minute ``replicas`` of ``o`` carry. Inverts the Poisson quantile with its
    Cornish-Fisher form (mean + z√mean + (z²-1)/6, within a request a minute of the exact one) — closed form, so
    the break-even search is a loop over GPU counts rather than a search over team sizes."""
    z = NormalDist().inv_cdf(inp.percentile)
    target = 60.0 * replicas * o.req_per_s - (z * z - 1) / 6
    if target <= 0:
        return 0
    root = (-z + math.sqrt(z * z + 4 * target)) / 2  # √mean
    per_dev_per_min = inp.active_fraction * inp.keystrokes_per_min * inp.requests_per_keystroke
    return int(root * root / per_dev_per_min)


def break_even(inp: PlanInputs, seat: float) -> tuple[int | None, Option | None]:
    """From how many developers on, self-hosting (the comparable option cheapest per developer at scale) costs
    no more than ``seat`` a developer, for every larger team too; None when it never does (up to MAX_DEVELOPERS).
    Whole GPUs make it a staircase: just after each added GPU a team pays for idle capacity."""
    options = _comparable(inp)
    if not options:
        return None, None
    o = min(options, key=lambda x: _per_developer(x, inp))
    if _per_developer(o, inp) >= seat:
        return None, o
    on_demand, spot = inp.prices[o.gpu]
    per_replica = (spot if inp.spot else on_demand) * HOURS_PER_MONTH * o.gpus_per_replica
    last_loss, served, replicas = 0, 0, 0
    while served < MAX_DEVELOPERS:
        replicas += 1
        team_before, served = served, _team_served(replicas, o, inp)
        pays_from = math.ceil(replicas * per_replica / seat)  # the smallest team this many replicas pay for
        if pays_from - 1 > team_before:
            last_loss = max(last_loss, min(served, pays_from - 1))
    return last_loss + 1, o


def plan(inp: PlanInputs) -> dict:
    mean_rps, peak_rps = _rates(inp)
    rows = []
    for o in inp.options:
        gpus, monthly = _monthly(o, peak_rps, inp)
        on_demand, spot = inp.prices.get(o.gpu, (math.nan, math.nan))
        rows.append(
            {
                **asdict(o),
                "replicas": gpus // o.gpus_per_replica,
                "gpus": gpus,
                "monthly_on_demand": round(gpus * on_demand * HOURS_PER_MONTH),
                "monthly_spot": round(gpus * spot * HOURS_PER_MONTH),
                "per_developer": round(monthly / max(1, inp.developers), 2),
                "break_even_seats": {k: math.ceil(monthly / v) for k, v in inp.seat_prices.items()},
            }
        )
    saas = {k: round(v * inp.developers) for k, v in inp.seat_prices.items()}
    evens = {k: break_even(inp, v) for k, v in inp.seat_prices.items()}
    conclusion = _conclusion(inp, evens)
    return {
        "developers": inp.developers,
        "mean_rps": round(mean_rps, 2),
        "peak_rps": round(peak_rps, 1),
        "percentile": inp.percentile,
        "pricing": "spot" if inp.spot else "on-demand",
        "options": rows,
        "misses_slo": [
            m for m in MISSES_SLO if m not in {f"{o.model.removesuffix('-FP8')} on {o.gpu}" for o in inp.options}
        ],
        "saas_monthly": saas,
        "break_even_developers": {k: n for k, (n, _) in evens.items()},
        "conclusion": conclusion,
    }


def _conclusion(inp: PlanInputs, evens: dict[str, tuple[int | None, Option | None]]) -> str:
    """One line: which is cheaper for this team, and from how many developers self-hosting pays."""
    n = f"{inp.developers:,}"
    best = _cheapest(inp)
    if best is None or not inp.seat_prices:
        return f"for {n} developers there is nothing to compare (no priced option or no SaaS price)"
    o, gpus, monthly = best
    seat_name, seat = min(inp.seat_prices.items(), key=lambda kv: kv[1])
    hosted = f"self-hosting {o.model} on {gpus} × {o.gpu} ({money(monthly)})"
    saas = f"{seat_name} ({money(seat * inp.developers)})"
    if monthly <= seat * inp.developers:
        return f"for {n} developers {hosted} is cheaper than {saas}"
    line = f"for {n} developers {saas} is cheaper than {hosted}; "
    even, at = evens[seat_name]
    if even is not None and at is not None:
        return line + f"self-hosting pays from {even:,} developers ({at.model} on {at.gpu}s)"
    assert at is not None
    line += (
        f"self-hosting never pays against {seat_name} at {money(seat)} a seat (at best {at.model} on {at.gpu}s "
        f"costs {money(_per_developer(at, inp))} a developer)"
    )
    later = sorted((v, k) for k, (v, _) in evens.items() if v is not None)
    if later:
        v, k = later[0]
        line += f"; against {k} ({money(inp.seat_prices[k])} a seat) it pays from {v:,} developers"
    return line


def render(p: dict) -> str:
    out = [
        f"{p['developers']:,} developers: mean {p['mean_rps']} req/s, "
        f"p{p['percentile'] * 100:g} minute {p['peak_rps']} req/s (Poisson)",
        "",
        f"{'model':<24}{'GPU':<10}{'req/s/GPU':>10}{'GPUs':>6}{'on-demand':>16}{'spot':>16}{'per developer':>16}"
        f"  break-even seats vs SaaS ({p['pricing']})",
    ]
    for r in p["options"]:
        be = ", ".join(f"{k} {v:,}" for k, v in r["break_even_seats"].items())
        out.append(
            f"{r['model']:<24}{r['gpu']:<10}{r['req_per_s']:>10g}{r['gpus']:>6}{money(r['monthly_on_demand']):>16}"
            f"{money(r['monthly_spot']):>16}{money(r['per_developer']):>16}  {be}"
        )
    out.append("")
    if p.get("misses_slo"):
        out.append("Misses the SLO even at a trickle of load (one card): " + ", ".join(p["misses_slo"]) + ".")
    out.append("SaaS for the whole team: " + ", ".join(f"{k} {money(v)}" for k, v in p["saas_monthly"].items()))
    out.append(
        "req/s per GPU: within TTFT p99 ≤ 100 ms and E2E p99 ≤ 700 ms (700 in / 128 out), measured for the "
        "7B FP8 on an H200 up to 32 req/s, estimated elsewhere; measure yours with `server-kit bench`, then pass "
        "--capacity MODEL@GPU=REQ_PER_S."
    )
    out.append("Conclusion: " + p["conclusion"] + ".")
    return "\n".join(out)
