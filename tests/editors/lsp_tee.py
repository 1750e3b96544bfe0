"""Run an LSP server on stdio and record every message both ways as JSON lines (a wire tap for tests).

    python lsp_tee.py LOG_FILE SERVER_COMMAND...

Each log line is {"dir": "in" | "out", "msg": {...}}: "in" goes to the server, "out" comes from it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import BinaryIO


def pump(src: BinaryIO, dst: BinaryIO, log: BinaryIO, direction: str, lock: threading.Lock) -> None:
    while True:
        headers = b""
        while not headers.endswith(b"\r\n\r\n"):
            byte = src.read(1)
            if not byte:
                dst.close()
                return
            headers += byte
        length = 0
        for line in headers.decode("ascii").split("\r\n"):
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        body = src.read(length)
        dst.write(headers + body)
        dst.flush()
        with lock:
            log.write(json.dumps({"dir": direction, "msg": json.loads(body)}).encode() + b"\n")
            log.flush()


def main() -> int:
    log_path, *cmd = sys.argv[1:]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    lock = threading.Lock()
    with open(log_path, "ab") as log:
        threads = [
            threading.Thread(target=pump, args=(sys.stdin.buffer, proc.stdin, log, "in", lock), daemon=True),
            threading.Thread(target=pump, args=(proc.stdout, sys.stdout.buffer, log, "out", lock), daemon=True),
        ]
        for t in threads:
            t.start()
        threads[1].join()  # the server closed its stdout: it is done
        return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
