"""OPC UA notifications per second through the edge agent vs a bare asyncua client.

One asyncua server runs in a child process (so it does not share a core or an event loop with
the clients) and rewrites ``--nodes`` Double variables as fast as it can, each write with a
new source timestamp. Against it, in the same run, alternately:

* **baseline** - a bare asyncua subscription client (handler mode, counting notifications);
* **agent** - the agent's :class:`edge_agent.sources.opcua.OpcUaSource` delivering through the
  agent's Output (guard, metrics) into the real durable spool (SQLite WAL, fsync per batch).

Both subscribe the same nodes with the same publishing interval, sampling interval 0 and queue
size, and count notifications over ``--seconds`` after a warm-up. A Python asyncua server cannot
write much more than ~2k values/s, so both clients keep up with it and their wall-clock rates
measure the server; the figure compared is therefore **notifications per CPU second of the
client process** (all its threads: the agent's spool writes run in threads), i.e. what each
client could take with a core to itself. Wall-clock rates and the server's write rate are
reported too. Prints one JSON object; ``ratio`` = agent / baseline (target >= 0.70).

    python bench/agent_opcua.py            # full size
    python bench/agent_opcua.py --quick    # small, for CI smoke runs
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NAMESPACE = "urn:kilnworks-bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the server (child process) ------------------------------------------------------------


async def serve(port: int, nodes: int) -> None:
    from datetime import UTC, datetime, timedelta

    from asyncua import Server, ua

    logging.getLogger("asyncua").setLevel(logging.ERROR)
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench/")
    idx = await server.register_namespace(NAMESPACE)
    obj = await server.nodes.objects.add_object(ua.NodeId("kiln", idx), "kiln")
    variables = []
    for i in range(nodes):
        var = await obj.add_variable(ua.NodeId(f"kiln.tc{i}", idx), f"tc{i}", 0.0)
        variables.append(var.nodeid)
    produced = await obj.add_variable(
        ua.NodeId("kiln.produced", idx), "produced", ua.Variant(0, ua.VariantType.Int64)
    )
    await server.start()
    print("ready", flush=True)
    epoch = datetime(2030, 1, 1, tzinfo=UTC)
    count = 0
    tick = 0
    while True:
        tick += 1
        ts = epoch + timedelta(microseconds=tick)
        for nid in variables:
            dv = ua.DataValue(
                ua.Variant(float(tick % 1000) + 0.5, ua.VariantType.Double),
                SourceTimestamp=ts,
                ServerTimestamp=ts,
            )
            await server.write_attribute_value(nid, dv)
        count += len(variables)
        await server.write_attribute_value(
            produced.nodeid, ua.DataValue(ua.Variant(count, ua.VariantType.Int64))
        )
        await asyncio.sleep(0)  # let the server's publish machinery run


# --- the clients ---------------------------------------------------------------------------


async def produced_count(client, idx: int) -> int:
    from asyncua import ua

    return int(await client.get_node(ua.NodeId("kiln.produced", idx)).read_value())


async def measure_baseline(endpoint: str, nodes: int, warmup: float, seconds: float, cfg) -> dict:
    from asyncua import Client, ua

    count = 0

    class Handler:
        def datachange_notification(self, node, val, data) -> None:
            nonlocal count
            count += 1

    async with Client(endpoint, timeout=10, watchdog_intervall=30.0) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        sub = await client.create_subscription(cfg["publishing_interval_ms"], Handler())
        # the same monitored-item parameters as the agent asks for (queue size, sampling
        # interval 0, DataChangeFilter with the status-value-timestamp trigger), so the server
        # does the same work for both clients
        requests = []
        for i in range(nodes):
            params = ua.MonitoringParameters(
                ClientHandle=1000 + i,
                SamplingInterval=0.0,
                QueueSize=cfg["queue_size"],
                DiscardOldest=True,
                Filter=ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp),
            )
            rv = ua.ReadValueId(
                NodeId=ua.NodeId(f"kiln.tc{i}", idx), AttributeId=ua.AttributeIds.Value
            )
            requests.append(
                ua.MonitoredItemCreateRequest(
                    ItemToMonitor=rv,
                    MonitoringMode=ua.MonitoringMode.Reporting,
                    RequestedParameters=params,
                )
            )
        await sub.create_monitored_items(requests)
        await asyncio.sleep(warmup)
        c0, p0, t0, cpu0 = count, await produced_count(client, idx), time.perf_counter(), cpu()
        await asyncio.sleep(seconds)
        c1, p1, t1, cpu1 = count, await produced_count(client, idx), time.perf_counter(), cpu()
        await sub.delete()
    return result(c1 - c0, p1 - p0, t1 - t0, cpu1 - cpu0)


def cpu() -> float:
    """CPU seconds of this process, all threads (the agent's spool writes run in threads)."""
    return time.process_time()


def result(notifications: float, produced: float, wall_s: float, cpu_s: float) -> dict:
    return {
        "notifications": int(notifications),
        "notifications_per_s": round(notifications / wall_s, 1),
        "server_writes_per_s": round(produced / wall_s, 1),
        "client_cpu_s": round(cpu_s, 3),
        # what the client could take with a core of its own: the server in this bench cannot
        # write faster than ~2k values/s, so wall-clock rates mostly measure the server
        "notifications_per_cpu_s": round(notifications / cpu_s, 1) if cpu_s > 0 else None,
    }


async def measure_agent(endpoint: str, nodes: int, warmup: float, seconds: float, cfg) -> dict:
    from asyncua import Client
    from prometheus_client import CollectorRegistry

    from edge_agent.config import GuardConfig, NodeMapping, OpcUaConfig
    from edge_agent.guard import Guard
    from edge_agent.health import AgentMetrics
    from edge_agent.runtime import AgentOutput
    from edge_agent.sources.opcua import OpcUaSource
    from ingest.spool import Spool

    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        async with Client(endpoint, timeout=10, watchdog_intervall=30.0) as probe:
            idx = await probe.get_namespace_index(NAMESPACE)
            mappings = tuple(
                NodeMapping(
                    f"ns={idx};s=kiln.tc{i}",
                    "bench/plant-1/firing-shop/kiln-1",
                    f"zone{i}_tc1_temperature_c",
                    "°C",
                    sampling_interval_ms=0.0,
                    queue_size=cfg["queue_size"],
                )
                for i in range(nodes)
            )
            config = OpcUaConfig(
                "bench",
                endpoint,
                mappings,
                publishing_interval_ms=cfg["publishing_interval_ms"],
                read_eu_range=False,
                history_fill=False,
            )
            spool = Spool(Path(tmp) / "spool.db", max_bytes=4 << 30)
            metrics = AgentMetrics(CollectorRegistry())
            output = AgentOutput(spool, Guard(GuardConfig(max_future_s=0, max_past_s=0)), metrics)
            source = OpcUaSource(config, state_dir=Path(tmp))
            task = asyncio.create_task(source.run(output))
            try:
                await asyncio.wait_for(source.connected_event.wait(), 30)
                await asyncio.sleep(warmup)

                def out() -> float:
                    return metrics.readings_out.labels("bench")._value.get()

                c0, p0, t0, cpu0 = (
                    out(),
                    await produced_count(probe, idx),
                    time.perf_counter(),
                    cpu(),
                )
                await asyncio.sleep(seconds)
                c1, p1, t1, cpu1 = (
                    out(),
                    await produced_count(probe, idx),
                    time.perf_counter(),
                    cpu(),
                )
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                spool.close()
    return {
        **result(c1 - c0, p1 - p0, t1 - t0, cpu1 - cpu0),
        "spool": "SQLite WAL, fsync per batch",
    }


async def run(args: argparse.Namespace) -> dict:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--nodes", str(args.nodes)],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert server.stdout is not None
        line = await asyncio.to_thread(server.stdout.readline)
        if b"ready" not in line:
            raise RuntimeError("bench server did not start")
        endpoint = f"opc.tcp://127.0.0.1:{port}/bench/"
        cfg = {"publishing_interval_ms": 50.0, "queue_size": 1000}
        rounds = []
        for _ in range(args.rounds):
            base = await measure_baseline(endpoint, args.nodes, args.warmup, args.seconds, cfg)
            agent = await measure_agent(endpoint, args.nodes, args.warmup, args.seconds, cfg)
            rounds.append({"baseline": base, "agent": agent})
    finally:
        server.terminate()
        with contextlib.suppress(Exception):
            server.wait(10)
    best_base = max(r["baseline"]["notifications_per_cpu_s"] or 0 for r in rounds)
    best_agent = max(r["agent"]["notifications_per_cpu_s"] or 0 for r in rounds)
    delivered = [r["agent"]["notifications"] for r in rounds]
    return {
        "benchmark": "agent_opcua",
        "quick": args.quick,
        "nodes": args.nodes,
        "seconds_per_measurement": args.seconds,
        "publishing_interval_ms": cfg["publishing_interval_ms"],
        "queue_size": cfg["queue_size"],
        "rounds": rounds,
        "metric": "notifications per CPU second of the client process (best round)",
        "baseline_notifications_per_cpu_s": round(best_base, 1),
        "agent_notifications_per_cpu_s": round(best_agent, 1),
        "agent_notifications_delivered": delivered,
        "ratio": round(best_agent / best_base, 3) if best_base else None,
        "target_ratio": 0.70,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    p.add_argument("--nodes", type=int, default=None)
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--warmup", type=float, default=None)
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve is not None:
        asyncio.run(serve(args.serve, args.nodes or 100))
        return
    args.nodes = args.nodes or (20 if args.quick else 200)
    args.seconds = args.seconds or (1.5 if args.quick else 8.0)
    args.warmup = args.warmup or (0.5 if args.quick else 2.0)
    args.rounds = args.rounds or (1 if args.quick else 2)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
