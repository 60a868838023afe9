"""Test hosts on this machine: network namespaces joined by veth pairs to a bridge.

Each host is a namespace with one address on a private /24 that only these namespaces use; the
bridge has the last address, so the test process (in the root namespace) is a host on that
network too. A host can drop off the network and come back (``Host.disconnect``, ``reconnect``:
its cable, the bridge's end of its veth pair, goes down and up). ``TestNetwork`` creates
everything on entry and removes it on exit, failed test or not: first it SIGKILLs every process
still running in its namespaces (all of them started by the test), then it deletes the
namespaces, which takes their veth pairs along, and the bridge. Needs root and iproute2.
"""

from __future__ import annotations

import ipaddress
import os
import random
import secrets
import signal
import subprocess
from dataclasses import dataclass
from types import TracebackType


def ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Host:
    name: str  # the network namespace
    address: str
    cable: str  # the bridge's end of its veth pair, in the root namespace

    def disconnect(self) -> None:
        """Pull this host's cable: its end on the bridge goes down, so whatever it sends is lost
        (no error comes back: its connections hang, as across a real partition).
        """
        ip("link", "set", self.cable, "down")

    def reconnect(self) -> None:
        ip("link", "set", self.cable, "up")

    def command(self, *argv: str) -> list[str]:
        """``argv`` run on this host."""
        return ["ip", "netns", "exec", self.name, *argv]

    def pids(self) -> list[int]:
        return [int(pid) for pid in ip("netns", "pids", self.name, check=False).split()]

    def kill_all(self) -> None:
        """SIGKILL every process on this host (the test started them all)."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class TestNetwork:
    __test__ = False  # a helper, not a test class

    """``TestNetwork("server", "worker-1")`` as a context manager: ``hosts["server"].address`` and so on."""

    def __init__(self, *names: str) -> None:
        self.tag = secrets.token_hex(3)
        self.bridge = f"lbr{self.tag}"
        self.subnet = self._free_subnet()
        addresses = list(self.subnet.hosts())
        self.client_address = str(addresses[-1])  # the bridge: the test process's own address
        self.hosts = {
            name: Host(f"liara-{self.tag}-{index}", str(addresses[index]), f"lv{self.tag}o{index}")
            for index, name in enumerate(names, 1)
        }

    def _free_subnet(self) -> ipaddress.IPv4Network:
        """A 10.x.y.0/24 no route of this machine touches."""
        taken = [ipaddress.ip_network(line.split()[0]) for line in ip("-4", "route").splitlines() if "/" in line]
        while True:
            subnet = ipaddress.ip_network(f"10.{random.randint(100, 254)}.{random.randint(0, 254)}.0/24")
            if not any(subnet.overlaps(route) for route in taken):
                return subnet

    def __enter__(self) -> TestNetwork:
        try:
            ip("link", "add", self.bridge, "type", "bridge")
            ip("addr", "add", f"{self.client_address}/24", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
            for index, host in enumerate(self.hosts.values(), 1):
                inside = f"lv{self.tag}i{index}"
                ip("netns", "add", host.name)
                ip("link", "add", host.cable, "type", "veth", "peer", "name", inside)
                ip("link", "set", inside, "netns", host.name)
                ip("link", "set", host.cable, "master", self.bridge, "up")
                ip("-n", host.name, "addr", "add", f"{host.address}/24", "dev", inside)
                ip("-n", host.name, "link", "set", inside, "up")
                ip("-n", host.name, "link", "set", "lo", "up")
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()

    def remove(self) -> None:
        namespaces = ip("netns", "list", check=False)
        for host in self.hosts.values():
            if host.name in namespaces:
                host.kill_all()
                ip("netns", "del", host.name, check=False)
        ip("link", "del", self.bridge, check=False)
