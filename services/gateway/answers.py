"""Policy's answers as HTTP: a refusal's reason is the error code, its kind the status.

APP.md: 401 not logged in (or a wrong password), 403 refused for authority (a wrong PIN,
remote unlock off, a wrong claim, the trust table), 409 any other refusal of a change
(unknown person, a code in use...), 423 locked out, 503 policy did not answer. A reason
not named here is a 409: policy refused, and nothing was changed.
"""

from __future__ import annotations

from typing import Any

from proto.control import Done
from proto.owner import AuditReport, Home, Listing
from proto.policy import Decision
from proto.schema import Message
from services.gateway.bodies import Refused

STATUS_OF_REASON = {
    "wrong-password": 401,
    "wrong-pin": 403,
    "remote-unlock-off": 403,
    "wrong-serial": 403,
    "wrong-code": 403,
    "unauthorized": 403,  # the trust table: the gateway may not ask that
    "locked-out": 423,
    "pin-locked-out": 423,
    "login-locked-out": 423,
    "bad-field": 400,  # policy's own decoding refused what the gateway passed
    "bad-value": 400,
    "expired": 503,  # the request waited too long to be read: as good as no answer
    "replayed": 503,
    "no-answer": 503,
    "internal-error": 502,  # policy failed on it: a bug there, never the client's fault
}


def status_of(reason: str) -> int:
    return STATUS_OF_REASON.get(reason, 409)


def no_answer() -> Refused:
    return Refused(503, "no-answer", "the lock's policy did not answer in time")


def refused_by_policy(reason: str, detail: str) -> Refused:
    return Refused(status_of(reason), reason or "refused", detail or reason)


def body_of(answer: Message | None) -> dict[str, Any]:
    """A JSON body for an answer that grants or lists; Refused for one that refuses."""
    if answer is None:
        raise no_answer()
    if isinstance(answer, Done):
        if not answer.ok:
            raise refused_by_policy(answer.reason, answer.detail)
        return {"ok": True, "detail": answer.detail} if answer.detail else {"ok": True}
    if isinstance(answer, Decision):
        if not answer.granted:
            raise refused_by_policy(answer.reason, f"refused: {answer.reason}")
        return {"granted": True}
    if isinstance(answer, Listing):
        return {"items": answer.items}
    if isinstance(answer, (AuditReport, Home)):
        return answer.to_body()
    raise Refused(502, "unexpected-answer", f"policy answered with {answer.TYPE}")
