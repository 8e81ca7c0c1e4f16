"""The BlueZ transport (issue 16, L-32) against python-dbusmock's BlueZ template on a
private D-Bus: a real dbus-daemon, the mock as bluetoothd, hw/bluez.py as the lock's
radio, and this test as bluetoothd's other half, the phone's side of the air.

What the template covers, and so what is tested here: the adapter found by Adapter1,
powered through Properties.Set; LEAdvertisingManager1.RegisterAdvertisement (the mock
counts ActiveInstances); a phone's link as Device1's Connected (AddDevice, ConnectDevice,
DisconnectDevice); bluetoothd going away and coming back (NameOwnerChanged).

What it does not cover: the template has no GattManager1, so RegisterApplication is added
to the mock here (Mock.AddMethod) and only recorded; the mock never reads our objects nor
the advertisement's properties, so this test reads the GATT tree (GetManagedObjects) and
calls WriteValue and StartNotify itself, as bluetoothd would, and hears the notifications
as PropertiesChanged. Without a radio nothing covers what bluetoothd does between those
objects and the air: ATT and its MTU exchange (the `mtu` option is given here), long
writes, notification to several phones, pairing and link encryption, advertising data
limits (31 bytes) and real phones' timing (see README, Bluetooth).
"""

from __future__ import annotations

import asyncio
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from hw import bluez
from hw.ble import NOTIFY_UUID, SERVICE_UUID, WRITE_UUID
from ops.phone import operate
from proto import phonekey
from proto.board import Actuate
from services.ble.relay import Relay
from tests.test_ble_policy import Rig, build, register
from tests.test_owner_app import claim

DBUSMOCK = Path(__file__).resolve().parents[1] / ".venv" / "dbusmock"  # ops/venv.sh
SYSTEM_PYTHON = "/usr/bin/python3"
PHONE = "AA:BB:CC:DD:EE:01"


def _missing() -> str | None:
    if not shutil.which("dbus-daemon"):
        return "dbus-daemon is missing (./run-tests installs it: ops/venv.sh ensure_test_packages)"
    if not (DBUSMOCK / "dbusmock").is_dir():
        return f"python-dbusmock is not in {DBUSMOCK} (ops/venv.sh ensure_dbusmock)"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import dbus"], capture_output=True)
    if probe.returncode:
        return "Debian's python3-dbus is missing (ops/venv.sh ensure_test_packages)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


class Air:
    """A private bus, the mock bluetoothd on it, and a client to drive both from here."""

    def __init__(self, folder: Path) -> None:
        config = folder / "bus.conf"
        config.write_text(
            "<busconfig><type>system</type><listen>unix:path="
            f"{folder}/bus</listen><auth>EXTERNAL</auth><policy context='default'>"
            "<allow send_destination='*' eavesdrop='true'/><allow receive_sender='*'/>"
            "<allow own='*'/><allow user='*'/></policy></busconfig>"
        )
        self.daemon = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.daemon.stdout is not None
        self.address = self.daemon.stdout.readline().strip()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.bus: MessageBus = self.run(self._connect())
        self.notified: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self.bus.add_message_handler(self._heard)
        self.mock: subprocess.Popen[bytes] | None = None
        self.start_bluetoothd()

    async def _connect(self) -> MessageBus:
        return await MessageBus(bus_address=self.address).connect()

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(
        self,
        dest: str,
        path: str,
        iface: str,
        member: str,
        sig: str = "",
        body: list[Any] | None = None,
    ) -> Any:
        msg = Message(destination=dest, path=path, interface=iface, member=member,
                      signature=sig, body=body or [])  # fmt: skip
        reply = self.run(self.bus.call(msg))
        assert reply.message_type != MessageType.ERROR, (member, reply.error_name, reply.body)
        return reply.body

    def properties(self, dest: str, path: str, iface: str) -> dict[str, Variant]:
        return self.call(dest, path, "org.freedesktop.DBus.Properties", "GetAll", "s", [iface])[0]

    def mock_call(
        self, path: str, member: str, sig: str, *args: Any, iface: str = "org.bluez.Mock"
    ) -> Any:
        return self.call("org.bluez", path, iface, member, sig, list(args))

    def start_bluetoothd(self) -> None:
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address, "PYTHONPATH": str(DBUSMOCK)}
        self.mock = subprocess.Popen(
            [SYSTEM_PYTHON, "-m", "dbusmock", "--system", "--template", "bluez5"], env=env
        )
        deadline = time.monotonic() + 15
        while not self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                            "NameHasOwner", "s", ["org.bluez"])[0]:  # fmt: skip
            assert time.monotonic() < deadline, "the mock bluetoothd did not come up"
            time.sleep(0.05)
        self.mock_call("/org/bluez", "AddAdapter", "ss", "hci0", "lock")
        for member, sig in (("RegisterApplication", "oa{sv}"), ("UnregisterApplication", "o")):
            self.mock_call("/org/bluez/hci0", "AddMethod", "sssss", "org.bluez.GattManager1",
                           member, sig, "", "", iface="org.freedesktop.DBus.Mock")  # fmt: skip

    def stop_bluetoothd(self) -> None:
        assert self.mock is not None
        self.mock.terminate()
        self.mock.wait(10)

    def calls(self, member: str) -> list[list[Any]]:
        """The arguments of each call of member the mock recorded."""
        recorded = self.mock_call("/org/bluez/hci0", "GetMethodCalls", "s", member,
                                  iface="org.freedesktop.DBus.Mock")[0]  # fmt: skip
        return [[a.value if isinstance(a, Variant) else a for a in args] for _, args in recorded]

    def _heard(self, msg: Message) -> None:
        if (
            msg.member == "PropertiesChanged"
            and msg.path == bluez.NOTIFY_PATH
            and "Value" in msg.body[1]
        ):
            self.notified.put(bytes(msg.body[1]["Value"].value))

    def listen(self, sender: str) -> None:
        rule = f"type='signal',sender='{sender}',path='{bluez.NOTIFY_PATH}'"
        self.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            "s",
            [rule],
        )

    def close(self) -> None:
        self.bus.disconnect()
        self.loop.call_soon_threadsafe(self.loop.stop)
        for proc in (self.mock, self.daemon):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)


class BluezCentral:
    """A phone, as bluetoothd shows it to the lock's application: WriteValue calls with
    the device and the MTU, notifications as PropertiesChanged of the notify value."""

    def __init__(self, air: Air, radio: bluez.BluezRadio, device: str, mtu: int = 23) -> None:
        self.air, self.radio, self.device, self.mtu = air, radio, device, mtu
        air.listen(radio.unique_name)
        air.call(
            radio.unique_name, bluez.NOTIFY_PATH, "org.bluez.GattCharacteristic1", "StartNotify"
        )

    def send(self, chunks: list[bytes]) -> None:
        options = {
            "device": Variant("o", self.device),
            "mtu": Variant("q", self.mtu),
            "type": Variant("s", "command"),
        }
        for chunk in chunks:
            self.air.call(self.radio.unique_name, bluez.WRITE_PATH, "org.bluez.GattCharacteristic1",
                          "WriteValue", "aya{sv}", [chunk, options])  # fmt: skip

    def receive(self, timeout: float) -> bytes | None:
        try:
            return self.air.notified.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        pass


def eventually(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{check} not true within {timeout}s"
        time.sleep(0.05)
    return value


@pytest.fixture(scope="module")
def air(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Air]:
    a = Air(tmp_path_factory.mktemp("air"))
    yield a
    a.close()


@pytest.fixture(scope="module")
def lock(
    air: Air, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Rig, bluez.BluezRadio]]:
    """Policy's parts in this process (tests/test_ble_policy.py) behind the BlueZ radio."""
    rig = build(tmp_path_factory.mktemp("lock") / "data")
    assert claim(rig.policy).ok and register(rig).lock_id
    radio = bluez.BluezRadio(adapter="hci0", name="lockmesh-test", bus_address=air.address)
    rig.relay = Relay(rig.relay.ask, radio.notify)
    radio.start(rig.relay)
    eventually(lambda: radio.state().state == "advertising")
    yield rig, radio
    radio.close()


def test_issue_16_the_radio_powers_the_adapter_and_registers_application_and_advert(
    air, lock
) -> None:
    rig, radio = lock
    props = air.properties("org.bluez", "/org/bluez/hci0", "org.bluez.LEAdvertisingManager1")
    assert props["ActiveInstances"].value == 1
    assert [c[0] for c in air.calls("RegisterApplication")] == [bluez.APP]
    assert air.properties("org.bluez", "/org/bluez/hci0", "org.bluez.Adapter1")["Powered"].value
    assert radio.state().detail == "/org/bluez/hci0"


def test_issue_16_the_gatt_tree_bluetoothd_reads_names_the_service_and_characteristics(
    air, lock
) -> None:
    rig, radio = lock
    tree = air.call(
        radio.unique_name, bluez.APP, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"
    )[0]
    service = tree[bluez.SERVICE_PATH]["org.bluez.GattService1"]
    assert (service["UUID"].value, service["Primary"].value) == (SERVICE_UUID, True)
    chars = {
        p: i["org.bluez.GattCharacteristic1"]
        for p, i in tree.items()
        if "org.bluez.GattCharacteristic1" in i
    }
    got = {c["UUID"].value: (c["Flags"].value, c["Service"].value) for c in chars.values()}
    assert got == {
        WRITE_UUID: (["write", "write-without-response"], bluez.SERVICE_PATH),
        NOTIFY_UUID: (["notify"], bluez.SERVICE_PATH),
    }
    advert = air.properties(radio.unique_name, bluez.ADVERT, "org.bluez.LEAdvertisement1")
    assert (advert["Type"].value, advert["ServiceUUIDs"].value) == ("peripheral", [SERVICE_UUID])


def test_l32_issue_16_a_phone_unlocks_through_bluez_and_its_replay_is_refused(air, lock) -> None:
    rig, radio = lock
    device = air.mock_call("/org/bluez", "AddDevice", "sss", "hci0", PHONE, "phone")[0]
    air.mock_call("/org/bluez", "ConnectDevice", "ss", "hci0", PHONE)
    eventually(lambda: radio.state().state == "connected")
    for mtu in (23, 185):  # before and after an MTU exchange
        phone = BluezCentral(air, radio, device, mtu)
        assert operate(phone, rig.owner, "unlock") == (True, "")
    asked = [b.action for _, b, _ in rig.policy.outlet.asked if isinstance(b, Actuate)]
    assert asked == ["unlock", "unlock"]
    phone = BluezCentral(air, radio, device)
    late = phonekey.Answer("unlock", "owner", bytes(16), phonekey.public_bytes(rig.owner))
    forged = phonekey.sign_answer(rig.owner, bytes(8), late).encode()
    from ops.phone import exchange

    assert phonekey.decode_result(exchange(phone, forged)) == (False, "unknown-nonce")
    stranger = Ed25519PrivateKey.generate()
    assert operate(phone, stranger, "unlock") == (False, "unknown-key")
    air.mock_call("/org/bluez", "DisconnectDevice", "ss", "hci0", PHONE)
    eventually(lambda: radio.state().state == "advertising")


def test_issue_16_when_bluetoothd_comes_back_the_radio_registers_again(air, lock) -> None:
    rig, radio = lock
    air.stop_bluetoothd()
    eventually(lambda: radio.state().state == "absent")
    air.start_bluetoothd()  # a new bluetoothd knows nothing of us
    eventually(lambda: radio.state().state == "advertising", timeout=bluez.RETRY_S + 15)
    assert [c[0] for c in air.calls("RegisterApplication")] == [bluez.APP]
    phone = BluezCentral(air, radio, "/org/bluez/hci0/dev_AA_BB_CC_DD_EE_02")
    assert operate(phone, rig.owner, "lock") == (True, "")
