"""`server-kit`: launch the model server and the gateway, manage keys, load test, size the server."""

from __future__ import annotations

import argparse
import signal
import sys

from codeassist.serverkit.cli_gateway import add_gateway_parser, add_keys_parser
from codeassist.serverkit.cli_launch import add_bench_parser, add_launch_args, add_plan_parser, cmd_launch_vllm
from codeassist.serverkit.localmodel import LOCAL_MODEL_ALIAS, LocalModelError, LocalModelServer

__all__ = ["main"]


def cmd_launch(args: argparse.Namespace) -> int:
    if args.model_server != "local":
        return cmd_launch_vllm(args)
    server = LocalModelServer(host=args.host, port=args.port, parallel=args.parallel)
    try:
        server.start()
    except LocalModelError as exc:
        print(f"server-kit: {exc}", file=sys.stderr)
        return 1
    print(f"local model server ready: {server.base_url}/v1 (model {LOCAL_MODEL_ALIAS}); Ctrl-C stops it", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        if args.with_gateway:  # the whole kit on a laptop: the gateway in front of the CPU model
            from codeassist.serverkit.cli_gateway import build_gateway_parser

            gw_args = build_gateway_parser().parse_args(["--upstream", f"{server.base_url}/v1",
                                                         "--port", str(args.gateway_port)])
            return gw_args.func(gw_args)
        assert server.proc is not None
        return server.proc.wait() or 0
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="server-kit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    launch = sub.add_parser("launch", help="start the model server")
    launch.add_argument("--model-server", choices=["local", "vllm"], default="vllm")
    launch.add_argument("--host", default="127.0.0.1")
    launch.add_argument("--port", type=int, default=8000)
    launch.add_argument("--parallel", type=int, default=4)
    launch.add_argument("--with-gateway", action="store_true", help="local: also run the gateway in front")
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
