"""Closed-loop HTTP client for scripts/bench/serve.sh: one request at a time per connection, so
each latency is the true time of one request (no coordinated-omission correction).

  serve_client.py latency URL BODY_FILE N [CONNECTIONS]  -> JSON: p50/p99/p99.9/max (ms),
        requests/s, mean parse and infer ms from `Server-Timing` when the server sends it
  serve_client.py ready URL TIMEOUT_S LOG -- CMD... -> starts CMD (output to LOG), polls URL
        every millisecond and prints "PID SECONDS": the server's pid and the time from its
        start to the first 200
"""
import http.client
import json
import sys
import threading
import time
from urllib.parse import urlparse


def latency(url, body_file, n, connections):
    u = urlparse(url)
    body = open(body_file, "rb").read()
    per = n // connections
    results = [None] * connections

    def worker(k):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        lat, parse, infer = [], [], []
        headers = {"Content-Type": "application/json"}
        for _ in range(per):
            t0 = time.perf_counter()
            conn.request("POST", u.path, body, headers)
            r = conn.getresponse()
            r.read()
            lat.append(time.perf_counter() - t0)
            if r.status != 200:
                raise SystemExit(f"status {r.status}")
            timing = r.getheader("Server-Timing")
            if timing:
                parts = dict(p.strip().split(";dur=") for p in timing.split(","))
                parse.append(float(parts["parse"]))
                infer.append(float(parts["infer"]))
        results[k] = (lat, parse, infer)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat = sorted(x for r in results for x in r[0])
    parse = [x for r in results for x in r[1]]
    infer = [x for r in results for x in r[2]]
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3
    out = {
        "n": len(lat),
        "rps": len(lat) / wall,
        "p50_ms": q(0.5),
        "p99_ms": q(0.99),
        "p999_ms": q(0.999),
        "max_ms": lat[-1] * 1e3,
    }
    if parse:
        out["parse_ms"] = sum(parse) / len(parse)
        out["infer_ms"] = sum(infer) / len(infer)
    print(json.dumps(out))


def ready(url, timeout, log, cmd):
    import subprocess

    u = urlparse(url)
    out = open(log, "wb")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    while time.perf_counter() - start < timeout:
        try:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=1)
            conn.request("GET", u.path)
            if conn.getresponse().status == 200:
                print(proc.pid, f"{time.perf_counter() - start:.4f}")
                return
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}; see {log}")
        time.sleep(0.001)
    proc.kill()
    raise SystemExit(f"{url} not ready after {timeout} s")


if __name__ == "__main__":
    if sys.argv[1] == "latency":
        latency(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 1)
    else:
        assert sys.argv[5] == "--"
        ready(sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[6:])
