"""The service base: sockets, lifecycle, dispatch by message type, heartbeats, status."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, TypeVar

import zmq

from proto import config as configuration
from proto import files
from proto.bus import Bus, Client
from proto.control import StatusReply, StatusRequest, refused
from proto.health import Heartbeat
from proto.layout import Layout
from proto.messages import REGISTRY  # every type known before decoding
from proto.schema import Message
from proto.wire import Envelope

log = logging.getLogger(__name__)

Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)
FAILED_EXIT_PAUSE_S = 1.0  # a crash waits this long before its exit, and so its restart
MAX_FAILED_EXIT_PAUSE_S = 30.0  # ... doubled for each start in a row that failed, up to this


def accepts(kind: type[Message]) -> Callable[[H], H]:
    """Marks a method as the handler of a request type. Who may send it is the trust
    table's business (proto/trust.py), checked by the bus before any handler runs."""

    def mark(fn: H) -> H:
        fn._accepts = kind  # type: ignore[attr-defined]
        return fn

    return mark


def hears(kind: type[Message]) -> Callable[[H], H]:
    """Marks a method as the handler of an event type (publishers: the trust table's)."""

    def mark(fn: H) -> H:
        fn._hears = kind  # type: ignore[attr-defined]
        return fn

    return mark


def _marked(klass: type, mark: str) -> Iterator[tuple[str, Handler]]:
    """(type name, function) of each method of klass (bases first) marked with mark."""
    for k in reversed(klass.__mro__):
        for fn in vars(k).values():
            if hasattr(fn, mark):
                yield getattr(fn, mark).TYPE, fn


def firmware() -> str:
    """The lockmesh release installed, or "unknown" (a source tree never installed).
    importlib.metadata is imported only when asked: it took 28 ms of policy's every start."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lockmesh")
    except PackageNotFoundError:
        return "unknown"


class Service:
    """A process of the mesh. Subclasses declare NAME and LISTENS and mark handlers.

    Handlers are methods of the service, or of its PARTS: classes each holding one
    capability and its state, made in setup() and handed over with route(). A message
    type has one handler in all of them: two stop the class from being defined.

    Lifecycle: run() opens the sockets, calls setup(), loops until stop(), then
    teardown(). stop() only sets a flag, so it is safe from a signal handler and
    idempotent. Every wait in the loop is bounded by tick_s().
    """

    NAME: ClassVar[str] = ""
    LISTENS: ClassVar[tuple[str, ...]] = ()
    TICK_S: ClassVar[float] = 0.05
    PARTS: ClassVar[tuple[type, ...]] = ()
    _requests: ClassVar[dict[str, Handler]]  # type name: the function that handles it
    _events: ClassVar[dict[str, Handler]]
    _homes: ClassVar[dict[str, type]]  # type name: the class (service or part) declaring it

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls._requests, cls._events, cls._homes = {}, {}, {}
        for home in (cls, *cls.PARTS):
            for mark, table in (("_accepts", cls._requests), ("_hears", cls._events)):
                for type_name, fn in _marked(home, mark):
                    if cls._homes.get(type_name, home) is not home:
                        raise TypeError(
                            f"{cls.__name__}: {type_name} is handled by both "
                            f"{cls._homes[type_name].__name__} and {home.__name__}"
                        )
                    table[type_name], cls._homes[type_name] = fn, home

    def __init__(
        self,
        layout: Layout,
        config: dict[str, dict[str, Any]] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.layout = layout
        self.config = config if config is not None else configuration.load(layout.config_file)
        self.mesh = self.config["mesh"]
        self.clock = clock
        self.state = "starting"
        self._stopping = False
        self._started = clock()
        self._lag = 0.0
        self.bus: Bus
        self._clients: dict[str, Client] = {}
        self._routed: dict[type, object] = {type(self): self}
        self._on_request: dict[str, Handler] = {}  # bound to their objects at start
        self._on_event: dict[str, Handler] = {}

    # -- hooks for subclasses -------------------------------------------------------------
    def setup(self) -> None:
        """Open hardware and state; called once the sockets are up."""

    def tick(self, now: float) -> None:
        """Periodic work, every tick_s() at most."""

    def tick_s(self) -> float:
        """Seconds to the next tick; a service may tick faster while something moves."""
        return self.TICK_S

    def teardown(self) -> None:
        """Close hardware; called once on the way out, whatever happened."""

    def status_detail(self) -> dict[str, Any]:
        return {}

    def route(self, *parts: object) -> None:
        """Hand the messages PARTS' classes handle to these objects, one of each class;
        called from setup()."""
        for part in parts:
            if type(part) not in self.PARTS or type(part) in self._routed:
                raise TypeError(f"{self.NAME}: {type(part).__name__} is not a part to route")
            self._routed[type(part)] = part

    def _bind(self) -> None:
        """Each handler bound to its object; a part that was not routed stops the start."""
        missing = sorted(home.__name__ for home in set(self._homes.values()) - set(self._routed))
        if missing:
            raise TypeError(f"{self.NAME}: no {', '.join(missing)} was routed")
        for table, bound in ((self._requests, self._on_request), (self._events, self._on_event)):
            for type_name, fn in table.items():
                bound[type_name] = fn.__get__(self._routed[self._homes[type_name]])

    # -- lifecycle ------------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping = True

    def run(self) -> None:
        self.bus = Bus(
            self.layout,
            self.NAME,
            max_bytes=self.mesh["max_message_bytes"],
            without=self.mesh["without"],
        )
        self.bus.counters.load(self._counters_file)
        try:
            self._open()
            self._record_start()
            self.setup()
            self._bind()
            if self.state == "starting":
                self.state = "ready"
            log.info("%s running (pid %d): %s", self.NAME, os.getpid(), self.state)
            self._loop()
        finally:
            try:
                self.teardown()
            finally:
                self.bus.counters.save(self._counters_file)
                self.bus.close()
                log.info("%s stopped", self.NAME)

    @property
    def _counters_file(self) -> Path:
        return self.layout.counters_file(self.NAME)

    def _open(self) -> None:
        self._pub = self.bus.bind_publisher()
        self._cmd = self.bus.bind_commands()
        self._poller = zmq.Poller()
        self._poller.register(self._cmd, zmq.POLLIN)
        self._subs: dict[zmq.Socket[bytes], str] = {}
        self._watched: dict[int, Callable[[], None]] = {}
        heard = [REGISTRY[type_name] for type_name in self._events]
        for peer in self.LISTENS:
            if peer in self.mesh["without"]:
                continue  # a part the lock is made without: no one may speak as it
            sock = self.bus.subscribe(peer, heard)  # only what a handler takes
            self._subs[sock] = peer
            self._poller.register(sock, zmq.POLLIN)

    def _record_start(self) -> None:
        path = self.layout.starts_file(self.NAME)
        try:
            count = int(path.read_text()) + 1 if path.exists() else 1
            path.write_text(str(count))
        except (OSError, ValueError) as e:
            log.warning("could not count this start in %s: %s", path, e)

    def _loop(self) -> None:
        beat_every = self.mesh["heartbeat_s"]
        ticked = next_tick = next_beat = self.clock()
        while not self._stopping:
            wait = max(0.0, min(next_tick, next_beat) - self.clock())
            for sock, _ in self._poller.poll(int(wait * 1000) + 1):
                self._dispatch(sock)
            # what a message started may tick faster (a drive): from now, not a slow tick on
            next_tick = min(next_tick, ticked + self.tick_s())
            now = self.clock()
            if now >= next_tick:
                self._lag = now - next_tick
                self._guarded("tick", self.tick, now)
                ticked, next_tick = now, now + self.tick_s()
            if now >= next_beat:
                self.publish(self._heartbeat())
                self.bus.counters.save(self._counters_file)  # only if they changed
                next_beat = now + beat_every

    def watch(self, fd: int, on_ready: Callable[[], None]) -> None:
        """Call on_ready in the loop whenever fd is readable: how a service's own threads
        (a module's worker) wake it without touching its sockets, which are not thread-safe."""
        self._watched[fd] = on_ready
        self._poller.register(fd, zmq.POLLIN)

    def _dispatch(self, sock: zmq.Socket[bytes] | int) -> None:
        if isinstance(sock, int):
            self._guarded("watched", self._watched[sock])
            return
        if sock is self._cmd:
            self._serve(*self.bus.receive_command(sock))
            return
        env = self.bus.receive_event(sock, self._subs[sock])
        if env is not None and (handler := self._on_event.get(env.type)) is not None:
            self._guarded(env.type, handler, env)

    def _serve(self, route: list[bytes], peer: str, env: Envelope[Message] | None) -> None:
        if env is None:
            return  # the bus counted, logged and (if it deserved one) answered it
        if isinstance(env.body, StatusRequest):
            self.bus.reply(self._cmd, route, self._status(), env.id)
            return
        handler = self._on_request.get(env.type)
        if handler is None:
            self.bus.counters.drop("unexpected", f"{env.type} from {peer}", "commands")
            answer: Message = refused("unexpected", f"{self.NAME} does not take {env.type}")
        else:
            answer = self._guarded(env.type, handler, env, peer)
            if answer is None:
                answer = refused("internal-error", f"{self.NAME} failed on {env.type}")
        self.bus.reply(self._cmd, route, answer, env.id)

    def _guarded(self, what: str, fn: Handler, *args: Any) -> Any:
        """Run a handler; a bug in one is logged and counted, never fatal to the loop."""
        try:
            return fn(*args)
        except Exception:
            self.bus.counters.drops["handler-error"] += 1
            log.exception("%s: handling %s failed", self.NAME, what)
            return None

    # -- messages -------------------------------------------------------------------------
    def publish(self, body: Message, cause: str | None = None) -> Envelope[Message]:
        return self.bus.publish(self._pub, body, cause)

    def stamp_event(self, body: Message, cause: str | None = None) -> Envelope[Message]:
        """An event stamped now, to publish later with publish_stamped(): a request sent
        in between can already name it as its cause. Nothing else may be published in
        between: receivers drop an event whose sequence number comes late."""
        return self.bus.events.stamp(body, cause)

    def publish_stamped(self, env: Envelope[Message]) -> Envelope[Message]:
        return self.bus.send_event(self._pub, env)

    def request(
        self,
        peer: str,
        body: Message,
        *,
        cause: str | None = None,
        timeout: float | None = None,
        sent: Callable[[], object] | None = None,
    ) -> Envelope[Message] | None:
        if peer in self.config["mesh"]["without"]:  # a part this lock lacks never answers:
            if sent is not None:  # asking it would only wait out the timeout
                sent()
            return None
        client = self._clients.get(peer) or self._clients.setdefault(peer, self.bus.client(peer))
        wait = self.mesh["request_timeout_s"] if timeout is None else timeout
        return client.request(body, timeout=wait, cause=cause, sent=sent)

    def _counters(self) -> dict[str, Any]:
        c = self.bus.counters
        return {
            "msgs_in": c.msgs_in,
            "msgs_out": c.msgs_out,
            "drops": dict(c.drops),
            "gaps": c.gaps,
        }

    def _heartbeat(self) -> Heartbeat:
        return Heartbeat(
            state=self.state,
            pid=os.getpid(),
            uptime_s=round(self.clock() - self._started, 3),
            lag_ms=round(self._lag * 1000, 3),
            **self._counters(),
        )

    def _status(self) -> StatusReply:
        return StatusReply(
            service=self.NAME,
            state=self.state,
            pid=os.getpid(),
            uptime_s=round(self.clock() - self._started, 3),
            detail=self.status_detail(),
            **self._counters(),
        )


def main(cls: type[Service]) -> None:
    """Entry point of a service process: `python -m services.NAME [--data DIR]`."""
    parser = argparse.ArgumentParser(prog=f"lockmesh-{cls.NAME}")
    parser.add_argument("--data", default=None, help="the lock's data directory")
    args = parser.parse_args()
    logging.basicConfig(
        level=os.environ.get("LOCKMESH_LOG", "INFO"),
        format=f"%(asctime)s {cls.NAME} %(levelname)s %(name)s: %(message)s",
    )
    service = cls(Layout.at(args.data))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: service.stop())
    try:
        service.run()
        return
    except files.FileRefused as e:  # a missing or unsafe key, a refused secret: one line
        log.critical("%s cannot start: %s", cls.NAME, e)
    except Exception:
        log.exception("%s failed", cls.NAME)
    pause = _pause_after_failure(service)
    log.error("%s exiting in %.0f s", cls.NAME, pause)
    time.sleep(pause)
    raise SystemExit(1)


def _pause_after_failure(service: Service) -> float:
    """supervisord restarts at once (startsecs=0, ops/supervisor_conf.py), as it cannot
    tell a kill from a crash; the service can, and backs off itself: 1 s after a crash,
    doubled for each start in a row that failed before running, so a broken one does
    not spin the processor."""
    path = service.layout.run / f"{service.NAME}.failed-starts"
    try:
        failed = 0 if service.state != "starting" else int(path.read_text() or 0) + 1
    except (OSError, ValueError):
        failed = 1
    try:
        path.write_text(str(failed))
    except OSError as e:
        log.warning("could not count this failed start in %s: %s", path, e)
    return min(FAILED_EXIT_PAUSE_S * 2.0 ** max(failed - 1, 0), MAX_FAILED_EXIT_PAUSE_S)
