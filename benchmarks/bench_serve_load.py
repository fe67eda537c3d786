"""Load test of `ferlab serve` on 127.0.0.1: N concurrent clients post a face photo to /v1/predict for D seconds.

Prints throughput, p50/p95 latency and the count of 2xx, 503 (deliberate back-pressure) and other 5xx
(must be zero). Usage: `nice python benchmarks/bench_serve_load.py [--duration 60] [--clients 50]`.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from ferlab.serve.launch import serve_subprocess

ROOT = Path(__file__).resolve().parents[1]


def face_jpeg() -> bytes:
    """The astronaut portrait (one smiling face) as a JPEG, like a phone upload."""
    from PIL import Image
    from skimage.data import astronaut

    buf = io.BytesIO()
    Image.fromarray(astronaut()).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@contextmanager
def running_server(model: str | None, concurrency: int, queue: int):
    """Start `ferlab serve` on a free local port and yield its URL once /healthz answers."""
    args = ["--workers-concurrency", str(concurrency), "--queue-size", str(queue)]
    args += ["--model", model] if model else []
    try:
        with serve_subprocess(args, cwd=ROOT) as url:
            yield url
    except RuntimeError as err:
        raise SystemExit(str(err)) from None


async def client(http: httpx.AsyncClient, url: str, photo: bytes, until: float, backoff: float,
                 statuses: Counter, latencies: list[float]) -> None:
    """One user: post the photo again and again; after a 503 wait `backoff` seconds (a polite retry)."""
    while time.monotonic() < until:
        start = time.perf_counter()
        try:
            resp = await http.post(f"{url}/v1/predict", files={"file": ("face.jpg", photo, "image/jpeg")})
            status = resp.status_code
        except httpx.HTTPError as err:
            status = f"error:{type(err).__name__}"
        elapsed = (time.perf_counter() - start) * 1000.0
        statuses[status] += 1
        if isinstance(status, int) and 200 <= status < 300:
            latencies.append(elapsed)
        elif status == 503:
            await asyncio.sleep(backoff)


async def load(url: str, clients: int, duration: float, backoff: float) -> tuple[Counter, list[float], float]:
    photo = face_jpeg()
    statuses: Counter = Counter()
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await http.post(f"{url}/v1/predict", files={"file": ("face.jpg", photo, "image/jpeg")})  # warm-up
        start = time.monotonic()
        await asyncio.gather(*(client(http, url, photo, start + duration, backoff, statuses, latencies)
                               for _ in range(clients)))
        wall = time.monotonic() - start
    return statuses, latencies, wall


def report(statuses: Counter, latencies: list[float], wall: float, clients: int) -> int:
    ok = sum(n for s, n in statuses.items() if isinstance(s, int) and 200 <= s < 300)
    busy = statuses.get(503, 0)
    other_5xx = sum(n for s, n in statuses.items() if isinstance(s, int) and s >= 500 and s != 503)
    other = sum(statuses.values()) - ok - busy - other_5xx
    p50, p95 = (np.percentile(latencies, [50, 95]) if latencies else (float("nan"), float("nan")))
    rows = [("clients", f"{clients}"), ("duration s", f"{wall:.1f}"), ("requests", f"{sum(statuses.values())}"),
            ("throughput 2xx/s", f"{ok / wall:.1f}"), ("latency p50 ms (2xx)", f"{p50:.0f}"),
            ("latency p95 ms (2xx)", f"{p95:.0f}"), ("2xx", f"{ok}"), ("503 back-pressure", f"{busy}"),
            ("other 5xx", f"{other_5xx}"), ("other (4xx, connection errors)", f"{other}")]
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 1 if other_5xx or other else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--backoff", type=float, default=0.2, help="client pause after a 503 (default: %(default)s)")
    parser.add_argument("--model", default=None, help="checkpoint or .onnx to serve (default: the bundled model)")
    parser.add_argument("--concurrency", type=int, default=2, help="server --workers-concurrency")
    parser.add_argument("--queue-size", type=int, default=16, help="server --queue-size")
    parser.add_argument("--url", default=None, help="test an already running server on 127.0.0.1 instead")
    args = parser.parse_args()
    if args.url and not args.url.startswith(("http://127.0.0.1", "http://localhost")):
        parser.error("--url must be on 127.0.0.1 or localhost: this load test never leaves the machine")
    if args.url:
        statuses, latencies, wall = asyncio.run(load(args.url.rstrip("/"), args.clients, args.duration, args.backoff))
    else:
        with running_server(args.model, args.concurrency, args.queue_size) as url:
            statuses, latencies, wall = asyncio.run(load(url, args.clients, args.duration, args.backoff))
    return report(statuses, latencies, wall, args.clients)


if __name__ == "__main__":
    from _cli import run

    run(main)
