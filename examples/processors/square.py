#!/usr/bin/env python3
"""A complete external processor in plain Python, for the made-up stage "sqr".

It shows everything a processor must do (see docs/processor-protocol.md): print the
ready line, read one JSON request per line, answer each with the same id on one line,
and keep standard output for answers only (logs go to standard error). The task is a
number; the output is its square; a negative number is answered with an error.

Try it by hand:
    printf '{"id":1,"task":15}\n{"id":2,"task":-1}\n' | python3 examples/processors/square.py
"""

import json
import sys
import threading

STAGE = "sqr"
stdout_lock = threading.Lock()


def answer(request_id, output=None, error=None):
    line = json.dumps({"id": request_id, "err_msg": error, "output": output})
    with stdout_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def handle(request):
    task = request["task"]
    if not isinstance(task, int) or task < 0:
        answer(request["id"], error=f"expected a non-negative integer, got {task!r}")
    else:
        answer(request["id"], output=task * task)


def main():
    print(f"{STAGE} processor ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError as error:
            print(f"{STAGE} processor: ignoring a line that is not JSON: {error}", file=sys.stderr)
            continue
        # One thread per request: the parent decides how many are in flight.
        threading.Thread(target=handle, args=(request,), daemon=True).start()


if __name__ == "__main__":
    main()
