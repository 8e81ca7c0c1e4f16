"""The brokers' ports (issue 12): never from the kernel's ephemeral range, where an outgoing
connection could take one between our probe and the broker's bind; a block per xdist
worker; a port someone holds is passed over."""

from __future__ import annotations

import socket

import pytest

from ops.ports import BLOCK, bindable, ephemeral_range, free_port, worker_block


def test_issue12_broker_ports_lie_below_the_ephemeral_range_and_a_block_per_worker():
    ephemeral = ephemeral_range()
    blocks = [worker_block(f"gw{n}") for n in range(8)]
    assert all(block.stop <= ephemeral.start for block in blocks), (blocks[-1], ephemeral)
    taken = [set(block) for block in blocks]
    assert all(len(block) == BLOCK for block in taken)
    assert len(set().union(*taken)) == 8 * BLOCK, "two workers share a port"
    assert worker_block("master") == worker_block("gw0")


def test_issue12_free_ports_are_distinct_in_a_block_and_bindable():
    mine = worker_block()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(port in mine for port in ports)
    for port in ports[:5]:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", port))


def test_issue12_a_port_someone_holds_is_passed_over():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        held = holder.getsockname()[1]
        holder.listen()
        assert not bindable(held)
        spare = next(p for p in worker_block() if bindable(p))
        assert free_port([held, spare]) == spare
        with pytest.raises(RuntimeError, match="no free port"):
            free_port([held])
