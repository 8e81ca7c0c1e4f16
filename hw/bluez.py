"""The lock's radio through BlueZ over D-Bus (issue 16): a GATT application and an LE
advertisement registered with bluetoothd, with dbus-fast on asyncio in a thread of its own.

dbus-fast rather than bluezero or bless: it is asyncio-native and MIT, has no GLib or
dbus-python to build, answers ObjectManager.GetManagedObjects for the objects it exports
(what RegisterApplication needs), and is what Bleak, the BLE client most phones' test rigs
use, stands on; bless would bring a second D-Bus library (dbus-next, unreleased since 2021)
and bluezero a GLib main loop. The BlueZ API is small enough to speak directly (BlueZ
5.66's doc/gatt-api.txt and doc/advertising-api.txt).

Objects: the application's root APP (an ObjectManager, by dbus-fast) with one primary
service and two characteristics, the phone's writes (`write`, `write-without-response`)
and the lock's notifications (`notify`, sent as PropertiesChanged of Value); the
advertisement at ADVERT, outside the application's tree. bluetoothd reads the tree once,
at RegisterApplication, and drops it when this connection goes: when bluetoothd itself
comes back (NameOwnerChanged of org.bluez) both are registered again. A phone's link is
its Device1's Connected property; its writes name it in the `device` option.

Not covered without a radio: what bluetoothd does between our objects and the air (ATT,
the MTU exchange, notifications to several phones, pairing); see tests/test_ble_bluez.py.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Annotated, Any

from dbus_fast import BusType, DBusError, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import (
    DBusBool,
    DBusBytes,
    DBusDict,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
)
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_method, dbus_property

from hw.ble import ATT_MTU_MIN, NOTIFY_UUID, SERVICE_UUID, WRITE_UUID, Peripheral, RadioState

log = logging.getLogger(__name__)

BLUEZ = "org.bluez"
APP = "/org/lockmesh/ble"
SERVICE_PATH = f"{APP}/service0"
WRITE_PATH = f"{SERVICE_PATH}/char0"
NOTIFY_PATH = f"{SERVICE_PATH}/char1"
ADVERT = "/org/lockmesh/advert0"
RETRY_S = 5.0  # no bus, no bluetoothd, no adapter: tried again this often
DEVICE = "org.bluez.Device1"
PROPERTIES = "org.freedesktop.DBus.Properties"
Strings = Annotated[list[str], DBusSignature("as")]


class GattService(ServiceInterface):
    def __init__(self) -> None:
        super().__init__("org.bluez.GattService1")

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:  # noqa: N802
        return SERVICE_UUID

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> DBusBool:  # noqa: N802
        return True


class WriteCharacteristic(ServiceInterface):
    """The phone writes its chunks here; each goes to the peripheral in a worker thread
    (it may wait for policy), and the write is answered once it is handled."""

    def __init__(self, radio: "BluezRadio") -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self.radio = radio

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:  # noqa: N802
        return WRITE_UUID

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> DBusObjectPath:  # noqa: N802
        return SERVICE_PATH

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> Strings:  # noqa: N802
        return ["write", "write-without-response"]

    @dbus_method()
    async def WriteValue(
        self, value: DBusBytes, options: DBusDict
    ):  # no annotation: no reply body (dbus-fast reads it)  # noqa: N802
        conn = _option(options, "device", "bluez")
        mtu = int(_option(options, "mtu", ATT_MTU_MIN))
        await asyncio.get_running_loop().run_in_executor(
            None, self.radio.written, str(conn), bytes(value), mtu
        )


class NotifyCharacteristic(ServiceInterface):
    """The lock's chunks: each a PropertiesChanged of Value while a phone listens."""

    def __init__(self) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self.value = b""
        self.notifying = False

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:  # noqa: N802
        return NOTIFY_UUID

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> DBusObjectPath:  # noqa: N802
        return SERVICE_PATH

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> Strings:  # noqa: N802
        return ["notify"]

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> DBusBytes:  # noqa: N802
        return self.value

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> DBusBool:  # noqa: N802
        return self.notifying

    @dbus_method()
    def StartNotify(self):  # noqa: N802
        self.notifying = True

    @dbus_method()
    def StopNotify(self):  # noqa: N802
        self.notifying = False

    def send(self, chunk: bytes) -> None:
        self.value = chunk
        self.emit_properties_changed({"Value": chunk})


class Advertisement(ServiceInterface):
    def __init__(self, name: str) -> None:
        super().__init__("org.bluez.LEAdvertisement1")
        self.local_name = name  # not .name: a ServiceInterface's is its interface's

    @dbus_method()
    def Release(self):  # noqa: N802
        log.info("bluetoothd released the advertisement")

    @dbus_property(access=PropertyAccess.READ)
    def Type(self) -> DBusStr:  # noqa: N802
        return "peripheral"

    @dbus_property(access=PropertyAccess.READ)
    def ServiceUUIDs(self) -> Strings:  # noqa: N802
        return [SERVICE_UUID]

    @dbus_property(access=PropertyAccess.READ)
    def LocalName(self) -> DBusStr:  # noqa: N802
        return self.local_name


def _option(options: dict[str, Any], name: str, default: Any) -> Any:
    value = options.get(name)
    return value.value if isinstance(value, Variant) else default


class BluezRadio:
    """The Radio of hw/ble.py on BlueZ. Its thread connects to the system bus (or
    `bus_address`), finds the adapter, powers it, registers the application and the
    advertisement, and keeps at it: a lost bus or bluetoothd is tried again."""

    def __init__(
        self, *, adapter: str = "", name: str = "lockmesh", bus_address: str | None = None
    ) -> None:
        self.adapter_name, self.name, self.bus_address = adapter, name, bus_address
        self._peripheral: Peripheral | None = None
        self._adapter = ""  # its path, while the application is registered there
        self._problem = "starting"  # why not, otherwise
        self._linked: set[str] = set()
        self.unique_name = ""  # ours on the bus, while connected: where bluetoothd calls us
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._notify_char = NotifyCharacteristic()
        self._thread = threading.Thread(target=self._run, name="bluez", daemon=True)

    # -- the Radio interface ----------------------------------------------------------------
    def start(self, peripheral: Peripheral) -> None:
        self._peripheral = peripheral
        self._thread.start()

    def notify(self, conn: str, chunk: bytes) -> None:
        """From any thread: sent on the loop, in order (before the write that caused it
        is answered)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._notify_char.send, chunk)

    def state(self) -> RadioState:
        if not self._adapter:
            return RadioState("absent" if self._problem != "stopped" else "off", "bluez",
                              self._problem)  # fmt: skip
        if self._linked:
            return RadioState("connected", "bluez", f"{len(self._linked)} phone(s)")
        return RadioState("advertising", "bluez", self._adapter)

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5)

    def written(self, conn: str, chunk: bytes, mtu: int) -> None:
        if self._peripheral is not None:
            self._peripheral.written(conn, chunk, mtu)

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        while not self._stop.is_set():
            try:
                await self._serve()
            except (DBusError, OSError, EOFError, ValueError) as e:
                self._adapter, self._problem = "", f"{type(e).__name__}: {e}"[:200]
                log.warning("bluez: %s; trying again in %.0f s", e, RETRY_S)
            try:
                await asyncio.wait_for(self._stop.wait(), RETRY_S)
            except asyncio.TimeoutError:
                pass

    async def _serve(self) -> None:
        """One connection to the bus: registered, then serving until the bus or
        bluetoothd goes away, or the radio stops."""
        if self.bus_address:
            bus = MessageBus(bus_address=self.bus_address)
        else:
            bus = MessageBus(bus_type=BusType.SYSTEM)
        await bus.connect()
        self.unique_name = bus.unique_name or ""
        gone = asyncio.Event()
        try:
            adapter = await self._find_adapter(bus)
            await self._register(bus, adapter)
            self._watch(bus, gone)
            await self._match(bus, f"type='signal',sender='{BLUEZ}',interface='{PROPERTIES}',"
                                   f"member='PropertiesChanged',arg0='{DEVICE}'")  # fmt: skip
            await self._match(bus, "type='signal',sender='org.freedesktop.DBus',"
                                   f"member='NameOwnerChanged',arg0='{BLUEZ}'")  # fmt: skip
            self._adapter = adapter
            stop = asyncio.ensure_future(self._stop.wait()) if self._stop else None
            lost = asyncio.ensure_future(gone.wait())
            await asyncio.wait([f for f in (stop, lost) if f], return_when=asyncio.FIRST_COMPLETED)
            for f in (stop, lost):
                if f is not None:
                    f.cancel()
            if gone.is_set():
                raise DBusError("org.bluez.Error.Failed", "bluetoothd went away")
            await self._unregister(bus, adapter)
            self._problem = "stopped"
        finally:
            self._adapter = ""
            bus.disconnect()

    async def _call(self, bus: MessageBus, path: str, interface: str, member: str,
                    signature: str = "", body: list[Any] | None = None) -> Message:  # fmt: skip
        call = Message(destination=BLUEZ, path=path, interface=interface, member=member,
                       signature=signature, body=body or [])  # fmt: skip
        reply = await bus.call(call)
        if reply.message_type == MessageType.ERROR:
            raise DBusError(reply.error_name or "org.bluez.Error.Failed", str(reply.body))
        return reply

    async def _find_adapter(self, bus: MessageBus) -> str:
        """The adapter's path: the one named, else the first with Adapter1 (not the first
        with GattManager1: an interface without properties may be missing from the list)."""
        reply = await self._call(
            bus, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"
        )
        objects: dict[str, dict[str, Any]] = reply.body[0]
        adapters = sorted(p for p, ifaces in objects.items() if "org.bluez.Adapter1" in ifaces)
        if self.adapter_name:
            adapters = [p for p in adapters if p.rsplit("/", 1)[-1] == self.adapter_name]
        if not adapters:
            raise ValueError(f"no Bluetooth adapter {self.adapter_name or ''}".strip())
        for path, ifaces in objects.items():
            connected = ifaces.get(DEVICE, {}).get("Connected")
            if connected is not None and connected.value:
                self._link(path, True)
        return adapters[0]

    async def _register(self, bus: MessageBus, adapter: str) -> None:
        await self._call(bus, adapter, PROPERTIES, "Set", "ssv",
                         ["org.bluez.Adapter1", "Powered", Variant("b", True)])  # fmt: skip
        bus.export(SERVICE_PATH, GattService())
        bus.export(WRITE_PATH, WriteCharacteristic(self))
        bus.export(NOTIFY_PATH, self._notify_char)
        bus.export(ADVERT, Advertisement(self.name))
        await self._call(bus, adapter, "org.bluez.GattManager1", "RegisterApplication",
                         "oa{sv}", [APP, {}])  # fmt: skip
        await self._call(bus, adapter, "org.bluez.LEAdvertisingManager1",
                         "RegisterAdvertisement", "oa{sv}", [ADVERT, {}])  # fmt: skip

    async def _unregister(self, bus: MessageBus, adapter: str) -> None:
        for interface, member, path in (
            ("org.bluez.LEAdvertisingManager1", "UnregisterAdvertisement", ADVERT),
            ("org.bluez.GattManager1", "UnregisterApplication", APP),
        ):
            try:
                await self._call(bus, adapter, interface, member, "o", [path])
            except DBusError as e:
                log.info("bluez: %s.%s: %s", interface, member, e)

    async def _match(self, bus: MessageBus, rule: str) -> None:
        await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                               interface="org.freedesktop.DBus", member="AddMatch",
                               signature="s", body=[rule]))  # fmt: skip

    def _watch(self, bus: MessageBus, gone: asyncio.Event) -> None:
        def on_message(msg: Message) -> None:
            if msg.message_type != MessageType.SIGNAL:
                return
            if msg.member == "NameOwnerChanged" and msg.body[0] == BLUEZ:
                gone.set()  # bluetoothd restarted: what it read of us is gone with it
            elif msg.member == "PropertiesChanged" and msg.body[0] == DEVICE:
                connected = msg.body[1].get("Connected")
                if connected is not None and msg.path:
                    self._link(msg.path, bool(connected.value))

        bus.add_message_handler(on_message)

    def _link(self, device: str, up: bool) -> None:
        if up and device not in self._linked:
            self._linked.add(device)
            if self._peripheral is not None:
                self._peripheral.connected(device)
        elif not up and device in self._linked:
            self._linked.discard(device)
            if self._peripheral is not None:
                self._peripheral.disconnected(device)
