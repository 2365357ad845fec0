#!/usr/bin/env python3
"""An external processor in Python that stands in for any stage by relaying to another.

    relay.py <stage> <program> [arguments...]

It starts <program> (for example `sealing-worker processor pc1`, the built-in PC1), waits
for its ready line, prints its own, and then passes every request to it and every answer
back, logging each task's duration on standard error. It is the skeleton of the custom
processors operators write in practice: a proxy to a remote GPU box, a wrapper that
chooses a NUMA node or a GPU per task, an audit log of every task. Replace `forward` to
do the work another way.

Configure it in the worker's TOML:

    [[processors.pc1]]
    bin = "python3"
    args = ["/opt/sealcluster/relay.py", "pc1", "/usr/local/bin/sealing-worker", "processor", "pc1"]
"""

import json
import os
import subprocess
import sys
import threading
import time

stdout_lock = threading.Lock()
started = {}
started_lock = threading.Lock()


def log(message):
    print(f"relay: {message}", file=sys.stderr, flush=True)


def main():
    if len(sys.argv) < 3:
        log("usage: relay.py <stage> <program> [arguments...]")
        return 2
    stage, backend_command = sys.argv[1], sys.argv[2:]
    backend = subprocess.Popen(
        backend_command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    ready = backend.stdout.readline().strip()
    if ready != f"{stage} processor ready":
        log(f"the backend printed {ready!r} instead of its ready line")
        return 1
    print(f"{stage} processor ready", flush=True)

    def pass_answers_back():
        for line in backend.stdout:
            try:
                request_id = json.loads(line)["id"]
            except (json.JSONDecodeError, KeyError, TypeError):
                log(f"ignoring a backend line that is not an answer: {line[:100]!r}")
                continue
            with started_lock:
                began = started.pop(request_id, None)
            if began is not None:
                log(f"task {request_id} took {time.monotonic() - began:.3f} s")
            with stdout_lock:
                sys.stdout.write(line if line.endswith("\n") else line + "\n")
                sys.stdout.flush()
        # The backend is gone: exit, so the daemon sees this processor exit and restarts it.
        log(f"the backend exited with {backend.wait()}")
        sys.stdout.flush()
        os._exit(1)

    threading.Thread(target=pass_answers_back, daemon=True).start()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request_id = json.loads(line)["id"]
        except (json.JSONDecodeError, KeyError, TypeError):
            log(f"ignoring a line that is not a request: {line[:100]!r}")
            continue
        with started_lock:
            started[request_id] = time.monotonic()
        backend.stdin.write(line if line.endswith("\n") else line + "\n")
        backend.stdin.flush()
    backend.stdin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
