"""`server-kit`: launch the model server and the gateway, manage keys, load test, size the server."""

from __future__ import annotations

import argparse
import sys

from codeassist.serverkit.cli_gateway import add_gateway_parser, add_keys_parser
from codeassist.serverkit.cli_launch import add_bench_parser, add_launch_args, add_plan_parser, cmd_launch_vllm
from codeassist.serverkit.clihelp import add_command
from codeassist.serverkit.localmodel import LOCAL_MODEL_ALIAS, LocalModelError, llama_server_command
from codeassist.serverkit.supervise import GATEWAY_READY_S, Supervisor, gateway_command, supervised

__all__ = ["main"]

LOCAL_READY_S = 120.0  # llama-server loads the 270M model in seconds; generous for a busy laptop


def cmd_launch(args: argparse.Namespace) -> int:
    if args.model_server != "local":
        return cmd_launch_vllm(args)
    try:
        argv = llama_server_command(args.host, args.port, args.parallel)
    except LocalModelError as exc:
        print(f"server-kit: {exc}", file=sys.stderr)
        return 1

    def start(sup: Supervisor) -> None:
        model = sup.start("llama-server", argv, f"http://{args.host}:{args.port}", quiet=True)
        sup.wait_ready(model, LOCAL_READY_S)
        served = f"local model server {model.root_url}/v1 (model {LOCAL_MODEL_ALIAS})"
        if args.with_gateway:  # the whole kit on a laptop: the gateway in front of the CPU model
            gw_args = ["--upstream", f"{model.root_url}/v1", "--port", str(args.gateway_port)]
            gw = sup.start("gateway", gateway_command(gw_args), f"http://127.0.0.1:{args.gateway_port}")
            sup.wait_ready(gw, GATEWAY_READY_S)
            served = f"gateway {gw.root_url}/v1 -> {served}"
        print(f"ready: {served}; Ctrl-C or SIGTERM stops it", flush=True)

    return supervised(start)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="server-kit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    launch = add_command(
        sub,
        "launch",
        "start the model server",
        description="Starts the servers as child processes; SIGTERM or Ctrl-C stops them all "
        '(within a few seconds, their ports freed) and prints "stopped". Without a GPU here: '
        "--model-server local (CPU test model), or --dry-run --gpus NAME:MiB to plan for a GPU box.",
    )
    launch.add_argument(
        "--model-server",
        choices=["local", "vllm"],
        default="vllm",
        help="vllm: the GPU server (and the gateway); local: llama.cpp with a small CPU test model",
    )
    launch.add_argument("--host", default="127.0.0.1", help="local: the model server's address")
    launch.add_argument(
        "--port",
        type=int,
        default=8000,
        help="the model server's port (vLLM: the first replica's; more replicas take the next ones)",
    )
    launch.add_argument("--parallel", type=int, default=4, help="local: requests llama-server decodes at once")
    launch.add_argument(
        "--with-gateway", action="store_true", help="local: also run the gateway in front (on --gateway-port)"
    )
    add_launch_args(launch)
    launch.set_defaults(func=cmd_launch)
    add_gateway_parser(sub)
    add_plan_parser(sub)
    add_bench_parser(sub)
    add_keys_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
