"""`server-kit launch` (vLLM path) and `server-kit plan`: argument wiring only."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from codeassist.serverkit.clihelp import add_command
from codeassist.serverkit.deploy import GATEWAY_IMAGE, caddyfile, write_compose, write_systemd
from codeassist.serverkit.deploy_helm import write_helm
from codeassist.serverkit.deploy_k8s import write_k8s
from codeassist.serverkit.grafana import write_grafana
from codeassist.serverkit.launch import LaunchPlan, NoGpuError, detect_gpus, parse_gpus, plan_launch
from codeassist.serverkit.plan import Option, PlanInputs, peak_rps, plan, render
from codeassist.serverkit.supervise import GATEWAY_READY_S, Supervisor, gateway_command, supervised

__all__ = ["add_bench_parser", "add_launch_args", "add_plan_parser", "cmd_launch_vllm"]

VLLM_READY_S = 1800.0  # the first start downloads the weights
VLLM_GRACE_S = 8.0  # vLLM's own shutdown (engine core, CUDA) before SIGKILL; still "within seconds"
# Both ways on from a machine without a GPU: plan for the GPU box (what a dry run from a laptop is for), or
# try the kit here on the CPU model.
NO_GPU_HINT = (
    "  to plan for a GPU box from here, name its cards: "
    "server-kit launch --dry-run --gpus 'NVIDIA H100 80GB HBM3:81559' (NAME:MiB, as nvidia-smi shows them; "
    "also for --write-*)\n"
    "  to try the kit on this machine: server-kit launch --model-server local (CPU test model)"
)


def _write_caddy(lp: LaunchPlan, path: Path, args: argparse.Namespace) -> list[Path]:
    path.write_text(caddyfile(args.domain, args.gateway_port))
    return [path]


Writer = Callable[[LaunchPlan, Path, argparse.Namespace], list[Path]]
# The --write-NAME outputs, in the order they are written: NAME, metavar, help, and what writes it (the files).
WRITERS: tuple[tuple[str, str, str, Writer], ...] = (
    (
        "systemd",
        "DIR",
        "write systemd units (and a Caddyfile) here",
        lambda lp, path, a: write_systemd(lp, path, a.domain),
    ),
    (
        "compose",
        "FILE",
        "write a docker compose file (+ Caddyfile)",
        lambda lp, path, a: [write_compose(lp, path, a.domain, a.image)],
    ),
    (
        "k8s",
        "DIR",
        "write Kubernetes manifests here",
        lambda lp, path, a: write_k8s(lp, path, a.replicas, image=a.image),
    ),
    (
        "helm",
        "FILE",
        "past one box: values for vLLM's production-stack Helm chart (router + vLLM replicas on Kubernetes), "
        "and the gateway's manifests beside it (upstream: the chart's router)",
        lambda lp, path, a: write_helm(lp, path, a.helm_release, a.image, a.replicas),
    ),
    ("caddy", "FILE", "write a Caddyfile (TLS in front of the gateway)", _write_caddy),
    (
        "grafana",
        "FILE",
        "write a Grafana dashboard (JSON, import it) over the gateway's Prometheus metrics: the panels of "
        "its /dashboard page",
        lambda lp, path, a: [write_grafana(path, [g.name for g in lp.gpus])],
    ),
)


def add_launch_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="print the commands and why each flag was chosen")
    p.add_argument(
        "--gpus",
        help="skip detection and plan for these cards, 'NAME:MiB,NAME:MiB' (e.g. 'NVIDIA H100 80GB HBM3:81559'); "
        "a dry run or --write-* from a machine without a GPU",
    )
    p.add_argument(
        "--model", help="serve this model instead of the one chosen by the latency target (any Hugging Face id)"
    )
    p.add_argument("--developers", type=int, default=25, help="team size, for the expected load")
    p.add_argument(
        "--speculative",
        choices=["auto", "on", "off"],
        default="auto",
        help="n-gram speculative decoding (auto: on below --spec-max-qps)",
    )
    p.add_argument("--spec-max-qps", type=float, default=8.0, help="expected req/s above which speculation is left off")
    p.add_argument(
        "--fp8", choices=["auto", "on", "off"], default="auto", help="FP8 weights (auto: on for Hopper/Blackwell cards)"
    )
    p.add_argument("--gateway-port", type=int, default=8080, help="the gateway's port (the one clients use)")
    for name, metavar, help_text, _ in WRITERS:
        p.add_argument(f"--write-{name}", type=Path, metavar=metavar, help=help_text)
    # what the --write-* outputs take
    p.add_argument(
        "--replicas",
        type=int,
        help="vLLM replicas for --write-helm/--write-k8s, each on cards like these; the model is chosen for the "
        "load each then carries (default: one per GPU group here)",
    )
    p.add_argument(
        "--image",
        default=GATEWAY_IMAGE,
        help="the gateway's container image for --write-compose/--write-k8s (built from the repository's "
        "Dockerfile; for Kubernetes, push it to your registry under this name)",
    )
    p.add_argument("--helm-release", default="codeassist", help="the Helm release name (names the router Service)")
    p.add_argument("--domain", default="codeassist.example.com", help="public name for Caddy's certificate")


def _gpus(args: argparse.Namespace):
    if args.gpus:
        return parse_gpus("\n".join(",".join(x.rsplit(":", 1)) for x in args.gpus.split(",")))
    return detect_gpus()


def cmd_launch_vllm(args: argparse.Namespace) -> int:
    try:
        gpus = _gpus(args)
    except NoGpuError as exc:
        print(f"server-kit: {exc}\n{NO_GPU_HINT}", file=sys.stderr)
        return 1
    expected = peak_rps(PlanInputs(developers=args.developers))
    # --replicas (a cluster of such nodes): the model is chosen for the load each card then carries.
    per_choice = expected * len(gpus) / args.replicas if args.replicas else expected
    spec = {"auto": None, "on": True, "off": False}[args.speculative]
    lp = plan_launch(
        gpus,
        base_port=args.port,
        gateway_port=args.gateway_port,
        expected_qps=per_choice,
        spec_max_qps=args.spec_max_qps,
        speculative=spec,
        model=args.model,
        fp8={"auto": None, "on": True, "off": False}[args.fp8],
    )
    wrote: list[Path] = []
    for name, _, _, write in WRITERS:
        if (path := getattr(args, f"write_{name}")) is not None:
            wrote += write(lp, path, args)
    if wrote:
        print("wrote " + ", ".join(map(str, wrote)))
    if args.dry_run or wrote:
        if args.dry_run:
            print(lp.explain())
        return 0
    return _run(lp)


def _run(lp: LaunchPlan) -> int:
    """Start the vLLM replicas, wait for their /health, then the gateway; until SIGTERM/SIGINT or a child's exit."""

    def start(sup: Supervisor) -> None:
        replicas = [
            sup.start(f"vLLM replica {i}", r.argv, r.url.removesuffix("/v1"), env={**os.environ, **r.env})
            for i, r in enumerate(lp.replicas)
        ]
        for child in replicas:
            sup.wait_ready(child, VLLM_READY_S)
        gw_argv = lp.gateway_argv
        if gw_argv[:2] == ["server-kit", "gateway"]:  # this interpreter's, not whichever is on PATH
            gw_argv = gateway_command(gw_argv[2:])
        host, port = _flag(gw_argv, "--host"), _flag(gw_argv, "--port")
        sup.wait_ready(sup.start("gateway", gw_argv, f"http://127.0.0.1:{port}"), GATEWAY_READY_S)
        print(
            f"ready: gateway http://{host}:{port}/v1 -> {len(replicas)} vLLM replica(s); Ctrl-C or SIGTERM stops it",
            flush=True,
        )

    return supervised(start, grace_s=VLLM_GRACE_S)


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def cmd_plan(args: argparse.Namespace) -> int:
    inp = PlanInputs(
        developers=args.developers,
        active_fraction=args.active_fraction,
        keystrokes_per_min=args.keystrokes_per_min,
        requests_per_keystroke=args.requests_per_keystroke,
        percentile=args.percentile,
        spot=args.spot,
    )
    prices = dict(inp.prices)
    for item in args.price or []:
        gpu, _, val = item.partition("=")
        on, _, spot = val.partition("/")
        prices[gpu] = (float(on), float(spot or on))
    options = list(inp.options)
    for item in args.capacity or []:  # a measured figure replaces the row's, or adds one
        key, _, val = item.partition("=")
        model, _, gpu = key.partition("@")
        row = Option(model, gpu, 1, float(val), "--capacity")
        hit = [i for i, o in enumerate(options) if (o.model, o.gpu) == (model, gpu)]
        if hit:
            options[hit[0]] = replace(options[hit[0]], req_per_s=float(val), source="--capacity")
        else:
            options.append(row)
    seats = dict(inp.seat_prices)
    for item in args.seat_price or []:
        name, _, val = item.partition("=")
        seats[name] = float(val)
    result = plan(replace(inp, prices=prices, options=tuple(options), seat_prices=seats))
    print(json.dumps(result, indent=1) if args.json else render(result))
    return 0


def add_plan_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "plan", "size the server for a team: peak req/s, GPUs, cost, SaaS break-even")
    p.add_argument("--developers", type=int, required=True, help="team size")
    p.add_argument("--active-fraction", type=float, default=0.5, help="share of the team typing in the busiest hour")
    p.add_argument("--keystrokes-per-min", type=float, default=180.0, help="while typing")
    p.add_argument(
        "--requests-per-keystroke", type=float, default=0.2, help="completion requests after debounce and cache"
    )
    p.add_argument("--percentile", type=float, default=0.99, help="the busy minute to provision for")
    p.add_argument("--spot", action="store_true", help="price break-even with spot GPUs")
    p.add_argument("--price", action="append", metavar="GPU=ONDEMAND/SPOT", help="$/GPU-hour override")
    p.add_argument(
        "--capacity",
        action="append",
        metavar="MODEL@GPU=REQ_PER_S",
        help="your measured req/s per GPU within the SLO (server-kit bench), e.g. Qwen2.5-Coder-7B-FP8@H100=30",
    )
    p.add_argument("--seat-price", action="append", metavar="NAME=USD", help="SaaS $/seat/month")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_plan)


def cmd_bench(args: argparse.Namespace) -> int:
    import asyncio

    from codeassist.serverkit.loadtest import (
        PROFILES,
        BenchConfig,
        detect_profile,
        png_available,
        report,
        run_bench,
        summarize,
        write_outputs,
    )

    if args.png and not png_available():  # before the run, not after minutes of load
        print(
            "server-kit bench: --png needs matplotlib, which is not installed: pip install 'codeassist[bench]' "
            "(or leave out --png)",
            file=sys.stderr,
        )
        return 2
    key = os.environ.get("CODEASSIST_API_KEY") or (args.key_file.read_text().strip() if args.key_file else None)
    profile, why = (args.profile, "--profile") if args.profile != "auto" else detect_profile(args.url, key)
    prof = PROFILES[profile]
    cfg = BenchConfig(
        url=args.url,
        rate=args.rate if args.rate is not None else prof.rate,
        duration_s=args.duration,
        max_requests=args.max_requests,
        prompt_tokens=args.prompt_tokens if args.prompt_tokens is not None else prof.prompt_tokens,
        max_tokens=args.max_tokens if args.max_tokens is not None else prof.max_tokens,
        model=args.model,
        priority=args.priority,
        slo_ttft_ms=args.slo_ttft_ms,
        slo_e2e_ms=args.slo_e2e_ms,
        key=key,
        progress=not args.quiet,
        stop_on_saturation=not args.keep_going,
        profile=profile,
    )
    print(
        f"server-kit bench: profile {profile} ({why}): {cfg.prompt_tokens}-token prompts, {cfg.max_tokens} tokens, "
        f"{cfg.rate:g} req/s for {cfg.duration_s:g} s (flags override; --profile cpu|gpu)",
        file=sys.stderr,
    )
    results = asyncio.run(run_bench(cfg))
    summary = summarize(results, cfg)
    write_outputs(results, summary, args.json, args.png)
    print(json.dumps({"bench": "server_kit", **summary}))
    print(report(summary))
    return 0


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "bench", "open-loop Poisson load test (TTFT / ITL / E2E, goodput)")
    p.add_argument("--url", default="http://127.0.0.1:8080/v1", help="the gateway's (or model server's) …/v1 URL")
    p.add_argument(
        "--profile",
        choices=["auto", "gpu", "cpu"],
        default="auto",
        help="request defaults: gpu = 700-token prompts, 128 tokens, 8 req/s (the SLO's shape); cpu = 128-token "
        "prompts, 16 tokens, 1 req/s; auto asks the server's /models (llama.cpp: cpu, otherwise gpu)",
    )
    p.add_argument("--rate", type=float, help="mean requests per second (default: the profile's)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of arrivals")
    p.add_argument("--max-requests", type=int, default=10_000, help="stop sending after this many")
    p.add_argument("--prompt-tokens", type=int, help="prompt size, about 4 characters a token (default: the profile's)")
    p.add_argument("--max-tokens", type=int, help="tokens each request decodes, ignore_eos (default: the profile's)")
    p.add_argument("--model", default="default", help="the model name sent (the gateway maps it)")
    p.add_argument("--priority", default="interactive", help="x-priority class of the requests")
    p.add_argument("--slo-ttft-ms", type=float, default=100.0, help="time-to-first-token target for goodput")
    p.add_argument("--slo-e2e-ms", type=float, default=700.0, help="end-to-end target for goodput")
    p.add_argument("--key-file", type=Path, help="API key file (or env CODEASSIST_API_KEY; never on argv)")
    p.add_argument("--json", type=Path, help="write the summary and every request here")
    p.add_argument(
        "--png", type=Path, help="latency over time + percentile chart (needs matplotlib: codeassist[bench])"
    )
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="send the whole schedule even when the server is clearly saturated (by default sending stops, "
        "and the report says why)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_bench)
