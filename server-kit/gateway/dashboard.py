"""``/dashboard``: the team's week (or up to 90 days) on one server-rendered page, charts as inline SVG.

Who uses the server (active users per day), how often its suggestions are taken (acceptance rate and accepted
characters per day, from the daemons' reports), how fast it is (TTFT and end-to-end p50/p99 per day against the
targets, from the gateway's own histograms), how loaded it is (429s, queue wait, and the GPU and KV cache as
vLLM and nvidia-smi report them now) and what an accepted line costs (the GPUs' price from ``plan``'s cost model
over the accepted lines). Per-user rows show pseudonyms unless the admin asks for names (``?names=1``).

Two modules, one job each; this one names what the rest of the gateway uses:

- :mod:`.dashboard_data`: :func:`collect` does the queries and the arithmetic (a dict: what the benchmark times
  and the tests check), and the GPU figures and prices;
- :mod:`.dashboard_html`: :func:`render` turns that dict into the page.
"""

from __future__ import annotations

from codeassist.serverkit.gateway.dashboard_data import (
    CHARS_PER_LINE,
    E2E_TARGET_MS,
    TTFT_TARGET_MS,
    collect,
    gpu_figures,
    gpu_names,
    gpu_price_per_hour,
    price_key,
)
from codeassist.serverkit.gateway.dashboard_html import render

__all__ = [
    "CHARS_PER_LINE",
    "E2E_TARGET_MS",
    "TTFT_TARGET_MS",
    "collect",
    "gpu_figures",
    "gpu_names",
    "gpu_price_per_hour",
    "price_key",
    "render",
]
