"""`lockmesh phone keygen|claim|unlock|lock|grant|revoke|code`: the phone's side of the
Bluetooth keys (issue 16, L-32, L-34), so the whole flow runs on a laptop.

A phone is a folder (`--phone DIR`, default $LOCKMESH_PHONE, else
~/.local/share/lockmesh-phone): its Ed25519 key (key.secret, 0600), and for the owner's
phone what the claim gave it (lock.json: the lock's id; codes.secret, 0600: the offline
codes' secret). `unlock`, `lock` and `revoke` speak the protocol (proto/phonekey.py) to the
simulated lock's radio through `ble.sim`, the air of the simulated board; `grant` and
`code` are made on the phone alone, never contacting the lock.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hw.ble import Central, FrameError, Reassembler, chunks
from ops import owner
from proto import files, phonekey
from proto import offline_codes as offline
from proto.ble import BleSim, BleSimReply, PhoneKey, PhoneKeySet, PhoneRevoke
from proto.bus import Bus
from proto.control import Done
from proto.layout import Layout
from proto.phonekey import Answer, Grant, Refused

EXCHANGE_S = 5.0  # a message's answer from the lock, or "no-answer"


class PhoneError(RuntimeError):
    """What the phone cannot do, in one line."""


# -- the protocol over any link -------------------------------------------------------------
def exchange(central: Central, message: bytes, timeout: float = EXCHANGE_S) -> bytes:
    """Send one message, chunked to the link's MTU; the lock's whole reply."""
    central.send(chunks(message, central.mtu))
    parts, deadline = Reassembler(), time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        chunk = central.receive(left)
        if chunk is None:
            break
        try:
            reply = parts.feed(chunk)
        except FrameError as e:
            raise PhoneError(f"the lock's reply makes no message: {e}") from None
        if reply is not None:
            return reply
    raise PhoneError("the lock did not answer")


def operate(
    central: Central,
    key: Ed25519PrivateKey,
    action: phonekey.Action,
    *,
    grant: Grant | None = None,
    target: bytes = b"",
) -> tuple[bool, str]:
    """One challenge-response: (ok, the lock's reason)."""
    reply = exchange(central, phonekey.hello())
    if reply[:1] == bytes([phonekey.RESULT]):
        return phonekey.decode_result(reply)  # no challenge: why not
    lock_id, nonce = phonekey.decode_challenge(reply)
    credential = grant.encode() if grant else phonekey.public_bytes(key)
    answer = Answer(action, "visitor" if grant else "owner", nonce, credential, target)
    signed = phonekey.sign_answer(key, lock_id, answer)
    return phonekey.decode_result(exchange(central, signed.encode()))


class SimCentral:
    """The phone on the simulated board's air: each batch of writes is one `ble.sim`
    request, whose answer holds what the lock notified meanwhile."""

    def __init__(self, bus: Bus, conn: str = "phone") -> None:
        self.client, self.conn = bus.client("ble"), conn
        self._inbox: list[bytes] = []
        reply = self._sim("connect", [])
        self.mtu = reply.mtu

    def _sim(self, action: str, writes: list[bytes]) -> BleSimReply:
        body = BleSim(action=action, conn=self.conn, writes=writes)
        answer = self.client.request(body, timeout=5.0)
        if answer is None:
            raise PhoneError("the lock's radio did not answer (is the lock up?)")
        if not isinstance(answer.body, BleSimReply):
            reason = answer.body.reason if isinstance(answer.body, Done) else answer.body.TYPE
            raise PhoneError(f"the lock's radio refused: {reason}")
        return answer.body

    def send(self, chunks: list[bytes]) -> None:
        self._inbox += self._sim("write", chunks).notified

    def receive(self, timeout: float) -> bytes | None:
        return self._inbox.pop(0) if self._inbox else None

    def close(self) -> None:
        try:
            self._sim("disconnect", [])
        except PhoneError:
            pass


# -- the phone's folder ---------------------------------------------------------------------
def default_phone() -> Path:
    env = os.environ.get("LOCKMESH_PHONE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "lockmesh-phone"


class Wallet:
    """A phone's folder: its key, and what the owner's phone was given at the claim."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def make_key(self, force: bool = False) -> bytes:
        path = self.folder / "key.secret"
        if path.exists() and not force:
            raise PhoneError(f"{path} exists: this phone has a key (--force makes a new one)")
        files.private_dir(self.folder)
        key = Ed25519PrivateKey.generate()
        files.write_private(path, key.private_bytes_raw())
        return phonekey.public_bytes(key)

    def key(self) -> Ed25519PrivateKey:
        try:
            raw = files.read_private(self.folder / "key.secret")
        except files.MissingFile:
            raise PhoneError(f"no key in {self.folder}: run `lockmesh phone keygen`") from None
        return Ed25519PrivateKey.from_private_bytes(raw)

    def keep_claim(self, given: PhoneKey) -> None:
        files.write_private(self.folder / "codes.secret", bytes.fromhex(given.code_secret))
        info = {"lock_id": given.lock_id, "owner_key": given.owner_key}
        (self.folder / "lock.json").write_text(json.dumps(info) + "\n")

    def lock_id(self) -> bytes:
        try:
            return bytes.fromhex(json.loads((self.folder / "lock.json").read_text())["lock_id"])
        except (OSError, ValueError, KeyError):
            raise PhoneError("this phone claimed no lock: run `lockmesh phone claim`") from None

    def code_secret(self) -> bytes:
        try:
            return files.read_private(self.folder / "codes.secret")
        except files.MissingFile:
            raise PhoneError("this phone has no code secret: run `lockmesh phone claim`") from None


# -- the command ----------------------------------------------------------------------------
def add_parser(c: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    c.add_argument("--json", action="store_true")
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--phone", type=Path, default=None, help="the phone's folder")
    shared.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    sub = c.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common, shared], help=help, description=help)

    verb("keygen", "make this phone's key pair").add_argument("--force", action="store_true")
    claim = verb("claim", "claim the lock in pairing mode and register this phone's key")
    claim.add_argument("--serial", help="the serial system information announces")
    claim.add_argument(
        "--key-only",
        action="store_true",
        help="the lock is claimed: only register the key (SET held, app PIN)",
    )
    claim.add_argument(
        "--code-stdin",
        action="store_true",
        help="read the code, password and PIN (or the PIN alone) from stdin",
    )
    claim.add_argument("--password-file", type=Path, metavar="FILE")
    claim.add_argument("--pin", help="the app PIN (else asked for)")
    for name, help in (("unlock", "unlock over Bluetooth"), ("lock", "lock over Bluetooth")):
        v = verb(name, help)
        v.add_argument("--grant", type=Path, metavar="FILE", help="a visitor's grant")
        v.add_argument("--conn", default="phone", help="the simulated link's name")
    grant = verb("grant", "sign a visitor's key for a window (the owner's phone, offline)")
    grant.add_argument("visitor_key", help="the visitor phone's public key (keygen prints it)")
    grant.add_argument("--start", help="from (ISO 8601 or epoch seconds; default now)")
    grant.add_argument("--end", required=True, help="until")
    grant.add_argument("--uses", type=int, default=0, help="unlocks allowed (0: any)")
    grant.add_argument("--rights", default="unlock,lock", help="unlock, lock or both")
    grant.add_argument("--label", default="", help="the visitor's name in the log (16 bytes)")
    grant.add_argument("--out", type=Path, metavar="FILE", help="write the grant here too")
    revoke = verb("revoke", "refuse a grant (its id) or a visitor key from now on")
    revoke.add_argument("target", help="a grant id (16 hex digits) or a visitor key (64)")
    revoke.add_argument(
        "--remote",
        action="store_true",
        help="as the owner's request over the network, not over Bluetooth",
    )
    code = verb("code", "an offline visitor code for a window (the owner's phone, offline)")
    code.add_argument("--start", help="the window's first hour (default: this hour)")
    code.add_argument("--hours", type=int, required=True, choices=offline.DURATIONS_H)
    code.add_argument("--once", action="store_true", help="one unlock only")
    code.add_argument("--seq", type=int, default=0, choices=range(offline.SEQS),
                      help="a second code for the same window and kind")  # fmt: skip


OFFLINE = ("keygen", "grant", "code")  # made on the phone alone: no lock needed


def needs_no_lock(args: argparse.Namespace) -> bool:
    return getattr(args, "verb", None) in OFFLINE


def run(layout: Layout, args: argparse.Namespace) -> int:
    wallet = Wallet(args.phone or default_phone())
    try:
        shown = VERBS[args.verb](layout, args, wallet)
    except (PhoneError, Refused, owner.UsageError, ValueError) as e:
        print(f"lockmesh phone: {e}", file=sys.stderr)
        return 1
    return _show(shown, getattr(args, "json", False))


def _show(shown: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(shown, indent=2))
    else:
        print(shown.pop("line"))
    return 0 if shown.get("ok", True) else 1


def cmd_keygen(layout: Layout, args: argparse.Namespace, wallet: Wallet) -> dict[str, Any]:
    public = wallet.make_key(args.force).hex()
    return {"line": f"public key: {public}", "public_key": public}


def cmd_claim(layout: Layout, args: argparse.Namespace, wallet: Wallet) -> dict[str, Any]:
    key = wallet.key()
    with Bus(layout, "cli") as bus:
        policy = bus.client("policy")
        if not args.key_only:
            if not args.serial:
                raise PhoneError("--serial is needed to claim (or --key-only)")
            claim = owner.claim(args)
            _expect_ok(policy.request(claim, timeout=10.0), "the claim")
            pin = claim.pin
        else:
            pin = owner.read_pin(args)
        asked = PhoneKeySet(public_key=phonekey.public_bytes(key).hex(), pin=pin)
        given = _expect_ok(policy.request(asked, timeout=10.0), "the phone key")
    if not isinstance(given, PhoneKey):
        raise PhoneError(f"policy answered {given.TYPE}")
    wallet.keep_claim(given)
    return {"line": f"ok: this phone's key is the owner's (lock {given.lock_id})",
            "lock_id": given.lock_id}  # fmt: skip


def _expect_ok(answer: Any, what: str) -> Any:
    if answer is None:
        raise PhoneError(f"policy did not answer {what} (is the lock up?)")
    body = answer.body
    if isinstance(body, Done) and not body.ok:
        raise PhoneError(f"{what} refused: {body.reason}: {body.detail}")
    return body


def _speak(
    layout: Layout, conn: str, talk: Callable[[Central], tuple[bool, str]]
) -> tuple[bool, str]:
    with Bus(layout, "cli") as bus:
        central = SimCentral(bus, conn)
        try:
            return talk(central)
        finally:
            central.close()


def cmd_operate(layout: Layout, args: argparse.Namespace, wallet: Wallet) -> dict[str, Any]:
    key = wallet.key()
    grant = _read_grant(args.grant) if args.grant else None
    ok, reason = _speak(layout, args.conn, lambda c: operate(c, key, args.verb, grant=grant))
    done = {"unlock": "unlocked", "lock": "locked"}[args.verb]
    return {"line": done if ok else f"refused: {reason}", "ok": ok, "reason": reason}


def _read_grant(path: Path) -> Grant:
    try:
        return phonekey.decode_grant(bytes.fromhex(path.read_text().strip()))
    except OSError as e:
        raise PhoneError(f"cannot read the grant: {e.strerror}: {path}") from None


def cmd_grant(layout: Layout, args: argparse.Namespace, wallet: Wallet) -> dict[str, Any]:
    visitor = bytes.fromhex(args.visitor_key)
    flaw = phonekey.key_flaw(visitor)
    if flaw:
        raise PhoneError(f"the visitor key: {flaw}")
    rights = sum(phonekey.RIGHTS[r] for r in _rights(args.rights))
    start = owner.parse_time(args.start) or time.time()
    end = owner.parse_time(args.end)
    if end is None or end <= start:
        raise PhoneError("--end must come after the start")
    if not 0 <= args.uses < 2**16 or len(args.label.encode()) > phonekey.LABEL_BYTES:
        raise PhoneError(f"--uses is 0 to 65535, --label at most {phonekey.LABEL_BYTES} bytes")
    unsigned = Grant(wallet.lock_id(), os.urandom(phonekey.GRANT_ID_BYTES), visitor,
                     int(start), int(end), args.uses, rights, args.label)  # fmt: skip
    grant = phonekey.sign_grant(wallet.key(), unsigned)
    text = grant.encode().hex()
    if args.out:
        args.out.write_text(text + "\n")
    return {"line": f"grant {grant.grant_id.hex()}: {text}", "grant_id": grant.grant_id.hex(),
            "grant": text}  # fmt: skip


def _rights(text: str) -> list[str]:
    names = [r.strip() for r in text.split(",") if r.strip()]
    if not names or any(r not in phonekey.RIGHTS for r in names):
        raise PhoneError("--rights is unlock, lock or unlock,lock")
    return names


def cmd_revoke(layout: Layout, args: argparse.Namespace, wallet: Wallet) -> dict[str, Any]:
    if args.remote:  # the owner's request, as the app would send it
        with Bus(layout, "cli") as bus:
            revoke = PhoneRevoke(target=args.target)
            _expect_ok(bus.client("policy").request(revoke, timeout=5.0), "the revocation")
        return {"line": "revoked", "ok": True}
    target, key = bytes.fromhex(args.target), wallet.key()
    ok, reason = _speak(layout, "owner", lambda c: operate(c, key, "revoke", target=target))
    return {"line": "revoked" if ok else f"refused: {reason}", "ok": ok, "reason": reason}


def cmd_code(layout: Layout, args: argparse.Namespace, wallet: Wallet) -> dict[str, Any]:
    start = owner.parse_time(args.start) or time.time()
    spec = offline.spec_for(start, args.hours, "once" if args.once else "multi", args.seq)
    digits = offline.code(wallet.code_secret(), spec)
    window = f"{_utc(spec.start)} to {_utc(spec.end)}"
    return {"line": f"{digits}  ({spec.kind}, {window})", "code": digits,
            "start": spec.start, "end": spec.end, "kind": spec.kind}  # fmt: skip


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


VERBS: dict[str, Callable[[Layout, argparse.Namespace, Wallet], dict[str, Any]]] = {
    "keygen": cmd_keygen,
    "claim": cmd_claim,
    "unlock": cmd_operate,
    "lock": cmd_operate,
    "grant": cmd_grant,
    "revoke": cmd_revoke,
    "code": cmd_code,
}
