"""API benchmark: per-request latency and throughput of the main endpoints under a bounded
burst on loopback. Prints a table: `python benchmarks/api.py [--clients 1,20 --workers 1]`.

It starts the real API (`synth serve`, a subprocess, `--workers N`) on a free loopback port
against a fresh SYNTH_HOME, on SQLite and, when it answers, on a throwaway PostgreSQL database
(`--pg-url`, default postgresql+psycopg://postgres@127.0.0.1:5432). Each endpoint gets
`--requests` requests per endpoint, sent over each `--clients` count of concurrent keep-alive
connections in turn (default: 1, the cost of one request, then 20; a minimal HTTP/1.1 client,
so that the client costs the shared CPUs as little as possible), after a short warm-up:

- POST /datasets             a new pending request (one INSERT)
- GET  /datasets/{id}        a status read of the requests just created
- GET  /personas             an authenticated read (API key looked up and verified)

Targets on a 2-core machine, SQLite: GET /datasets/{id} p50 <= 5 ms and >= 500 requests/s;
POST /datasets p50 <= 15 ms. With N clients each sending its next request when the last one
is answered, the mean latency is N / (requests/s) (Little's law): at 20 clients a p50 of 5 ms
takes about 4,000 requests/s, so a closed-loop burst measures queueing, not the cost of a
request. The paced bursts (`--rates`, default 500 requests/s over 20 connections, open loop)
measure what the targets ask: the latency of each request while the server carries the load.
The column ms/req (1000 / requests/s) is the server's time per request under the burst;
`offered` is `max` for a closed-loop burst and the paced rate otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth_pipelines.core.cpus import cpu_description, interpreter_speed
from tests.helpers import free_port, stop_process

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"
BODY = json.dumps({"buckets": {"female/adult": 10, "male/senior": 5}}).encode()


@dataclass
class Burst:
    endpoint: str
    latencies: list[float]  # seconds, one per request
    wall: float
    statuses: dict[int, int]
    bodies: list[bytes]


class Connection:
    """One keep-alive HTTP/1.1 connection; answers are read by Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def burst(
    port: int,
    endpoint: str,
    paths: list[str],
    method: str,
    clients: int,
    headers=None,
    rate: float | None = None,
    body: bytes | None = None,
) -> Burst:
    """Every path in `paths` requested once over `clients` connections.

    Closed loop (`rate` None): each connection sends its next request when the last one is
    answered, so the burst runs as fast as the server answers. Open loop (`rate` requests/s):
    request i is due at i / rate seconds, on connection i mod clients, and its latency counts
    from when it was due, so a server falling behind shows as latency (no coordinated
    omission) rather than as a slower client. `body`: what each POST sends (default BODY).
    """
    connections = [await Connection.open("127.0.0.1", port) for _ in range(clients)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    bodies: list[bytes] = []
    queue = iter(paths)
    if body is None:
        body = BODY if method == "POST" else b""

    async def send(conn: Connection, path: str, since: float) -> None:
        status, answer = await conn.request(method, path, body, headers)
        latencies.append(time.perf_counter() - since)
        statuses[status] = statuses.get(status, 0) + 1
        bodies.append(answer)

    async def closed_loop(conn: Connection) -> None:
        for path in queue:
            await send(conn, path, time.perf_counter())

    async def open_loop(index: int, conn: Connection, start: float) -> None:
        for i in range(index, len(paths), clients):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await send(conn, paths[i], due)

    started = time.perf_counter()
    if rate is None:
        await asyncio.gather(*(closed_loop(conn) for conn in connections))
    else:
        await asyncio.gather(*(open_loop(i, c, started) for i, c in enumerate(connections)))
    wall = time.perf_counter() - started
    for conn in connections:
        conn.close()
    return Burst(endpoint, latencies, wall, statuses, bodies)


def start_server(env: dict[str, str], port: int, workers: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "synth_pipelines.cli", "serve", "--port", str(port)]
    if workers != 1:
        command += ["--workers", str(workers)]
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"synth serve exited {server.returncode}: {server.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"synth serve did not listen on port {port} within 60 s")


def postgres_database(base_url: str) -> tuple[str, str] | None:
    """A new throwaway database on the server at `base_url`: (its URL, its name), or None."""
    import psycopg

    name = f"synth_bench_api_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(
            base_url.replace("+psycopg", "") + "/postgres", autocommit=True, connect_timeout=3
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        print(f"PostgreSQL at {base_url} skipped: {exc}".strip())
        return None
    return f"{base_url}/{name}", name


def drop_postgres_database(base_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base_url.replace("+psycopg", "") + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def measure(
    port: int, token: str, clients: int, requests: int, warmup: int, rate: float | None = None
) -> list[tuple[int, Burst]]:
    auth = {"Authorization": f"Bearer {token}"}
    # Warm-up: lazy imports, connection pools and caches filled before anything is timed.
    warm = await burst(port, "warm-up", ["/datasets"] * warmup, "POST", clients)
    ids = [json.loads(body)["id"] for body in warm.bodies]
    await burst(port, "warm-up", [f"/datasets/{i}" for i in ids], "GET", clients)
    await burst(port, "warm-up", ["/personas"] * warmup, "GET", clients, auth)

    post = await burst(port, "POST /datasets", ["/datasets"] * requests, "POST", clients,
                       rate=rate)  # fmt: skip
    ids = [json.loads(body)["id"] for body in post.bodies if body.startswith(b'{"id"')]
    paths = [f"/datasets/{ids[i % len(ids)]}" for i in range(requests)]
    get = await burst(port, "GET /datasets/{id}", paths, "GET", clients, rate=rate)
    personas = await burst(port, "GET /personas (API key)", ["/personas"] * requests, "GET",
                           clients, auth, rate=rate)  # fmt: skip
    return [(clients, post), (clients, get), (clients, personas)]


def run_database(label: str, url: str, args) -> list[tuple[str, int, float | None, Burst]]:
    home = Path(tempfile.mkdtemp(prefix="synth_bench_api_"))
    env = {
        **os.environ,
        "SYNTH_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "SYNTH_DATABASE_URL": url,
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("SYNTH_PUBLIC_URL", None)
    port = free_port()
    server = start_server(env, port, args.workers)
    try:
        from synth_pipelines.core.security.accounts import create_api_key
        from synth_pipelines.core.storage.database import FactoryDatabase

        db = FactoryDatabase(url)  # migrated by the server before it listens
        token = create_api_key(db, "bench", "owner")
        db.dispose()
        bursts = []
        for clients in args.clients:
            bursts += [
                (clients, None, b)
                for _, b in asyncio.run(measure(port, token, clients, args.requests, args.warmup))
            ]
        for rate in args.rates:
            bursts += [
                (args.paced_clients, rate, b)
                for _, b in asyncio.run(
                    measure(port, token, args.paced_clients, args.requests, args.warmup, rate)
                )
            ]
    finally:
        stop_process(server)
        shutil.rmtree(home, ignore_errors=True)
    return [(label, clients, rate, b) for clients, rate, b in bursts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clients",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 20],
        help="concurrent connections, comma-separated: one burst each",
    )
    parser.add_argument(
        "--rates",
        type=lambda text: [float(n) for n in text.split(",") if n],
        default=[500.0],
        help="open-loop offered loads in requests/s, comma-separated ('' for none): one "
        "paced burst each, over --paced-clients connections",
    )
    parser.add_argument("--paced-clients", type=int, default=20, help="connections, paced")
    parser.add_argument("--requests", type=int, default=600, help="requests per endpoint")
    parser.add_argument("--warmup", type=int, default=40, help="untimed requests per endpoint")
    parser.add_argument("--workers", type=int, default=1, help="synth serve --workers")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL server (no database)")
    args = parser.parse_args()

    results: list[tuple[str, int, float | None, Burst]] = []
    for name in args.databases.split(","):
        if name == "sqlite":
            folder = tempfile.mkdtemp(prefix="synth_bench_api_db_")
            try:
                results += run_database("sqlite", f"sqlite:///{folder}/factory.db", args)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        elif name == "postgresql":
            created = postgres_database(args.pg_url)
            if created is None:
                continue
            url, database = created
            try:
                results += run_database("postgresql", url, args)
            finally:
                drop_postgres_database(args.pg_url, database)
        else:
            parser.error(f"unknown database {name!r}: sqlite or postgresql")

    print(
        f"\n{platform.python_implementation()} {platform.python_version()}, {cpu_description()}, "
        f"{interpreter_speed()}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"{args.requests} requests per endpoint and burst, "
        f"synth serve --workers {args.workers}"
    )
    print(
        f"{'database':<11} {'endpoint':<24} {'clients':>7} {'offered':>8} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'p99 ms':>7} {'req/s':>7} {'ms/req':>7}  statuses"
    )
    for label, clients, offered, b in results:
        p50, p95, p99 = np.percentile(np.array(b.latencies) * 1000, [50, 95, 99])
        statuses = " ".join(f"{code}x{count}" for code, count in sorted(b.statuses.items()))
        rate = len(b.latencies) / b.wall
        print(
            f"{label:<11} {b.endpoint:<24} {clients:>7} "
            f"{'max' if offered is None else f'{offered:.0f}/s':>8} {p50:>7.1f} {p95:>7.1f} "
            f"{p99:>7.1f} {rate:>7.0f} {1000 / rate:>7.2f}  {statuses}"
        )


if __name__ == "__main__":
    main()
