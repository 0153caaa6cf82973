"""Helper for bench/drivers/python-faiss.ts: Debian's python3-faiss IndexFlatIP, timed in Python.

Reads one JSON command per line on stdin and answers one JSON line on stdout:
  {"op": "build", "path", "n", "dim", "threads"}         -> {"buildMs"}
  {"op": "search", "path", "batch", "count", "k", "idsPath",
   "minReps", "maxReps", "budgetMs", "capMs"}             -> {"timesMs", "capped"}
  {"op": "free"} -> {}        {"op": "exit"} -> {}
Files are raw float32 (queries: count batches of batch x dim) and raw int64 (first batch's ids).
The timing rules mirror measure() in driver.ts.
"""
import json
import sys
import time

import faiss
import numpy as np


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def search(index, cmd):
    dim = index.d
    batch, count, k = cmd["batch"], cmd["count"], cmd["k"]
    flat = np.fromfile(cmd["path"], dtype=np.float32).reshape(count, batch, dim)
    batches = [np.ascontiguousarray(flat[i]) for i in range(count)]
    start = time.perf_counter()
    _, ids = index.search(batches[0], k)
    warmup_ms = (time.perf_counter() - start) * 1000
    ids.astype(np.int64).tofile(cmd["idsPath"])
    if warmup_ms > cmd["capMs"]:
        return {"timesMs": [warmup_ms], "capped": "capped: 1 run (%.1f s), no warm-up" % (warmup_ms / 1000)}
    reps = max(1, min(cmd["maxReps"], int(cmd["budgetMs"] // max(warmup_ms, 1e-3))))
    times = []
    for r in range(reps):
        queries = batches[r % count]
        start = time.perf_counter()
        index.search(queries, k)
        times.append((time.perf_counter() - start) * 1000)
    capped = None
    if reps < cmd["minReps"]:
        capped = "capped: %d rep%s" % (reps, "" if reps == 1 else "s")
    return {"timesMs": times, "capped": capped}


def main():
    index = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "build":
                faiss.omp_set_num_threads(cmd["threads"])
                data = np.fromfile(cmd["path"], dtype=np.float32).reshape(cmd["n"], cmd["dim"])
                start = time.perf_counter()
                index = faiss.IndexFlatIP(cmd["dim"])
                index.add(data)
                build_ms = (time.perf_counter() - start) * 1000
                del data
                reply({"buildMs": build_ms, "version": faiss.__version__, "threads": faiss.omp_get_max_threads()})
            elif op == "search":
                reply(search(index, cmd))
            elif op == "free":
                index = None
                reply({})
            elif op == "exit":
                reply({})
                return
            else:
                reply({"error": "unknown op %r" % op})
        except Exception as error:  # report to the driver instead of dying mid-run
            reply({"error": "%s: %s" % (type(error).__name__, error)})


if __name__ == "__main__":
    main()
