"""A real ``redis-server`` for the tests, on 127.0.0.1 and a free port.

``.ci/run`` installs Debian's ``redis-server`` and starts one, passing its
port in ``HARDY_TEST_REDIS_PORT``; tests that stop or restart Redis start
their own with :class:`RedisServer`.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster
import redis.sentinel


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Clients:
    """The clients a test was handed, closed together so no socket outlives its test.

    pytest runs with ``filterwarnings = error``: a client left to the garbage
    collector shows up as an unclosed-socket ``ResourceWarning`` at exit,
    in whichever test happens to be running then.
    """

    def __init__(self) -> None:
        self.made: list[Any] = []

    def keep(self, client: Any) -> Any:
        self.made.append(client)
        return client

    def close_clients(self) -> None:
        made, self.made = self.made, []
        for client in made:
            with contextlib.suppress(redis.RedisError, OSError):
                client.close()


def probe(client: Any, ask: Callable[[Any], Any]) -> Any:
    """``ask(client)``, then close the client."""
    try:
        return ask(client)
    finally:
        client.close()


class RedisServer(Clients):
    """A ``redis-server`` process without persistence, restartable on the same port.

    It runs in a temporary directory: a replica's full sync makes its master
    write ``dump.rdb`` even with ``--save ""``, and it must not land in the
    working directory.
    """

    def __init__(self, port: int | None = None) -> None:
        super().__init__()
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.dir: str | None = None

    def client(self) -> redis.Redis:
        return self.keep(redis.Redis(host="127.0.0.1", port=self.port))  # type: ignore[no-any-return]

    def start(self, *options: str) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not shutil.which(binary):
            pytest.fail("redis-server is not installed: apt-get install -y redis-server (.ci/run does this)")
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="hardy-redis-")
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [*command, "--dir", self.dir, *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if probe(redis.Redis(host="127.0.0.1", port=self.port), lambda c: c.ping()):
                    return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        """Stop the process; the clients stay open, as a user's would through an outage."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port, keeping the directory."""
        self.stop()
        self.start()

    def remove(self) -> None:
        """Stop for good, close the clients handed out and remove the directory."""
        self.close_clients()
        self.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def _free_cluster_port() -> int:
    """A port that is free with its cluster bus port (port + 10000) free too."""
    for _ in range(200):
        port = random.randint(20000, 40000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of ports for a cluster node")


def _binary(name: str) -> str:
    binary = shutil.which(name)
    if binary is None:
        pytest.fail(f"{name} is not installed: apt-get install -y redis-server redis-sentinel (.ci/run does this)")
    return binary


def _wait(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if predicate():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {seconds} s")
        time.sleep(0.05)


class RedisCluster(Clients):
    """A Redis Cluster of three masters (no replicas) on loopback ports, in a temporary directory."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="hardy-cluster-")
        self.ports = [_free_cluster_port() for _ in range(3)]
        self.processes: list[subprocess.Popen[bytes]] = []

    def client(self, **options: Any) -> redis.cluster.RedisCluster:
        return self.keep(redis.cluster.RedisCluster(host="127.0.0.1", port=self.ports[0], **options))  # type: ignore[no-any-return]

    def start(self) -> RedisCluster:
        server = _binary("redis-server")
        try:
            for port in self.ports:
                self.processes.append(
                    subprocess.Popen(
                        [
                            server,
                            "--port",
                            str(port),
                            "--bind",
                            "127.0.0.1",
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--dir",
                            self.dir,
                            "--cluster-enabled",
                            "yes",
                            "--cluster-config-file",
                            f"nodes-{port}.conf",
                            "--cluster-node-timeout",
                            "2000",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            for port in self.ports:
                _wait(
                    lambda port=port: bool(probe(redis.Redis(port=port), lambda c: c.ping())),
                    10,
                    f"cluster node {port} up",
                )
            subprocess.run(
                [_binary("redis-cli"), "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports), "--cluster-yes"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
            )
            for port in self.ports:
                _wait(
                    lambda port=port: (
                        probe(redis.Redis(port=port), lambda c: c.cluster("info"))["cluster_state"] == "ok"
                    ),
                    20,
                    f"cluster node {port} ready",
                )
            _wait(
                lambda: bool(
                    probe(redis.cluster.RedisCluster(host="127.0.0.1", port=self.ports[0]), lambda c: c.ping())
                ),
                10,
                "the cluster answers",
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.close_clients()
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self.processes = []
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisSentinel(Clients):
    """A master, one replica and one Sentinel (quorum 1) watching them, on loopback ports.

    :meth:`kill_master` kills the master; the Sentinel promotes the replica
    (down after 500 ms). :meth:`client` is the Sentinel's master client.
    """

    SERVICE = "hardy"

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="hardy-sentinel-")
        self.master = RedisServer()
        self.replica = RedisServer()
        self.sentinel_port = free_port()
        self.sentinel: subprocess.Popen[bytes] | None = None

    def client(self, timeout: float = 0.1) -> redis.Redis:
        sentinel = redis.sentinel.Sentinel(
            [("127.0.0.1", self.sentinel_port)], socket_timeout=timeout, socket_connect_timeout=timeout
        )
        for watcher in sentinel.sentinels:
            self.keep(watcher)
        master = sentinel.master_for(self.SERVICE, socket_timeout=timeout, socket_connect_timeout=timeout)
        return self.keep(master)  # type: ignore[no-any-return]

    def start(self) -> RedisSentinel:
        try:
            self.master.start()
            self.replica.start("--replicaof", "127.0.0.1", str(self.master.port))
            _wait(
                lambda: probe(self.replica.client(), lambda c: c.info("replication"))["master_link_status"] == "up",
                20,
                "the replica in sync",
            )
            config = Path(self.dir, "sentinel.conf")
            config.write_text(
                f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.master.port} 1\n"
                f"sentinel down-after-milliseconds {self.SERVICE} 500\n"
                f"sentinel failover-timeout {self.SERVICE} 5000\n"
            )
            self.sentinel = subprocess.Popen(
                [_binary("redis-sentinel"), str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            _wait(lambda: self._master_port() == self.master.port, 10, "the Sentinel watching the master")
            _wait(lambda: bool(probe(self.client(), lambda c: c.ping())), 10, "the master through the Sentinel")
        except BaseException:
            self.stop()
            raise
        return self

    def _master_port(self) -> int:
        address = probe(
            redis.Redis(port=self.sentinel_port, socket_timeout=1),
            lambda c: c.sentinel_get_master_addr_by_name(self.SERVICE),
        )
        return int(address[1])

    def kill_master(self) -> None:
        """Kill the master (SIGKILL: no goodbye to the replica); the Sentinel fails over to the replica."""
        if self.master.process is not None:
            self.master.process.kill()
            self.master.process.wait(10)
            self.master.process = None

    def wait_failover(self, seconds: float = 20.0) -> None:
        _wait(lambda: self._master_port() == self.replica.port, seconds, "the Sentinel's failover")
        _wait(
            lambda: probe(self.replica.client(), lambda c: c.info("replication"))["role"] == "master",
            seconds,
            "the replica promoted",
        )

    def stop(self) -> None:
        self.close_clients()
        if self.sentinel is not None:
            self.sentinel.terminate()
            try:
                self.sentinel.wait(10)
            except subprocess.TimeoutExpired:
                self.sentinel.kill()
                self.sentinel.wait(10)
            self.sentinel = None
        self.master.remove()
        self.replica.remove()
        shutil.rmtree(self.dir, ignore_errors=True)
