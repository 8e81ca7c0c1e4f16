"""How a module's worker thread talks to the mesh: through the service's own loop.

ZeroMQ sockets belong to one thread, and the service's loop owns them. A worker puts a
letter in the box and writes one byte to a pipe; the loop, woken by the pipe, publishes
or requests on the worker's behalf and hands any answer back.
"""

from __future__ import annotations

import os
import queue
from dataclasses import dataclass, field
from typing import Callable

from proto.schema import Message
from proto.wire import Envelope

Publish = Callable[[Message, "str | None"], object]
Request = Callable[[str, Message, "str | None"], "Envelope | None"]


@dataclass
class Letter:
    body: Message
    cause: str | None
    to: str | None = None  # a peer to ask; None: publish
    answer: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=1))


class Mailbox:
    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s  # how long a worker waits for the loop's answer
        self._letters: queue.Queue[Letter] = queue.Queue()
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)

    @property
    def fd(self) -> int:
        return self._read

    # -- from a worker thread ---------------------------------------------------------------
    def publish(self, body: Message, cause: str | None = None) -> None:
        self._post(Letter(body, cause))

    def request(self, to: str, body: Message, cause: str | None = None) -> Envelope | None:
        """The answer, or None when there was none in time (treated as a refusal)."""
        letter = Letter(body, cause, to)
        self._post(letter)
        try:
            return letter.answer.get(timeout=self.wait_s)
        except queue.Empty:
            return None

    def _post(self, letter: Letter) -> None:
        self._letters.put(letter)
        os.write(self._write, b"\0")

    # -- in the service's loop --------------------------------------------------------------
    def deliver(self, publish: Publish, request: Request) -> None:
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                letter = self._letters.get_nowait()
            except queue.Empty:
                return
            if letter.to is None:
                publish(letter.body, letter.cause)
            else:
                letter.answer.put(request(letter.to, letter.body, letter.cause))

    def close(self) -> None:
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass
