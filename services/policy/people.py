"""People, their passcodes and validity, and visitor codes: the rules of L-1 to L-9."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from services.policy.rules import CREDENTIAL_RULES, Slot, Validity, Visitor
from services.policy.store import Store

ROLES = ("admin", "user")
# capacity settings per template kind: (whole lock, per person) (L-3)
TEMPLATE_LIMITS = {
    "face": ("lock_faces", "person_faces"),
    "fingerprint": ("lock_fingerprints", "person_fingerprints"),
    "palm-vein": ("lock_palms", "person_palms"),
}
CODE_KINDS = ("normal", "duress")


class Refusal(Exception):
    """A change the rules do not allow: a stable reason and a sentence for people."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class CodeRef:
    """Whose a stored passcode digest is."""

    kind: str  # "normal", "duress" or "visitor"
    owner: str  # a person's number, or a visitor code's label


@dataclass(frozen=True)
class Standing:
    """A person's UserStatus, role and CredentialRule, as the rules take them (issue 15)."""

    disabled: bool = False
    admin: bool = False
    factors: int = 1


def days_from_mask(mask: int) -> frozenset[int]:
    """Matter's DaysMask (bit 0 Sunday … bit 6 Saturday) as Python weekdays (0 Monday)."""
    return frozenset((bit - 1) % 7 for bit in range(7) if mask >> bit & 1)


def slots_to_json(slots: list[list[int]]) -> str:
    return json.dumps([[int(m), int(a), int(b)] for m, a, b in slots])


def validity_of(start: float | None, end: float | None, slots_json: str) -> Validity:
    slots = tuple(Slot(days_from_mask(m), a, b) for m, a, b in json.loads(slots_json))
    return Validity(start=start, end=end, slots=slots)


class People:
    def __init__(self, store: Store, capacity: dict[str, int], wall: Callable[[], float]) -> None:
        self.store, self.db, self.capacity, self._wall = store, store.db, capacity, wall

    # -- reading --------------------------------------------------------------------------
    def count(self, role: str | None = None) -> int:
        return self.store.cache.get("people", ("count", role), lambda: self._count(role))

    def _count(self, role: str | None) -> int:
        if role is None:
            return int(self.db.execute("SELECT count(*) FROM people").fetchone()[0])
        row = self.db.execute("SELECT count(*) FROM people WHERE role=?", (role,)).fetchone()
        return int(row[0])

    def exists(self, number: str) -> bool:
        return (
            self.db.execute("SELECT 1 FROM people WHERE number=?", (number,)).fetchone() is not None
        )

    def role(self, number: str) -> str | None:
        row = self.db.execute("SELECT role FROM people WHERE number=?", (number,)).fetchone()
        return row[0] if row else None

    def validity(self, number: str) -> Validity:
        """Kept until the people table changes (readcache.py): read at every decision."""
        return self.store.cache.get("people", ("validity", number), lambda: self._validity(number))

    def _validity(self, number: str) -> Validity:
        row = self.db.execute(
            "SELECT valid_start, valid_end, slots FROM people WHERE number=?", (number,)
        ).fetchone()
        return validity_of(*row) if row else Validity()

    def standing(self, number: str) -> Standing:
        """What the rules need of a person beside their validity (issue 15); read at every
        decision, kept until the people table changes. Nobody by that number: a standing
        that grants nothing more than a stranger's (not an administrator, one factor)."""
        return self.store.cache.get("people", ("standing", number), lambda: self._standing(number))

    def _standing(self, number: str) -> Standing:
        row = self.db.execute(
            "SELECT role, status, credential_rule FROM people WHERE number=?", (number,)
        ).fetchone()
        if row is None:
            return Standing()
        role, status, rule = row
        return Standing(status == "disabled", role == "admin", CREDENTIAL_RULES[rule])

    def listing(self) -> list[dict[str, Any]]:
        """Each person with counts of their credentials, never the credentials (L-33)."""
        people = []
        for number, role, name, start, end, slots, status, rule in self.db.execute(
            "SELECT number, role, name, valid_start, valid_end, slots, status, credential_rule "
            "FROM people ORDER BY number"
        ):
            codes, biometrics = (
                dict(
                    self.db.execute(
                        f"SELECT kind, count(*) FROM {table} WHERE person=? GROUP BY kind",
                        (number,),
                    )
                )
                for table in ("passcodes", "templates")
            )
            people.append(
                {
                    "number": number,
                    "role": role,
                    "name": name,
                    "valid_start": start,
                    "valid_end": end,
                    "slots": json.loads(slots),
                    "passcodes": codes.get("normal", 0),
                    "duress": codes.get("duress", 0),
                    "faces": biometrics.get("face", 0),
                    "fingerprints": biometrics.get("fingerprint", 0),
                    "palms": biometrics.get("palm-vein", 0),
                    "status": status,
                    "credential_rule": rule,
                }
            )
        return people

    def codes(self) -> dict[bytes, CodeRef]:
        """Every stored passcode digest, people's and visitors'."""
        refs = {
            bytes(d): CodeRef(kind, person)
            for d, kind, person in self.db.execute("SELECT digest, kind, person FROM passcodes")
        }
        refs.update(
            {
                bytes(d): CodeRef("visitor", label)
                for d, label in self.db.execute("SELECT digest, label FROM visitors")
            }
        )
        return refs

    def lengths(self) -> set[int]:
        return {
            r[0]
            for r in self.db.execute(
                "SELECT length FROM passcodes UNION SELECT length FROM visitors"
            )
        }

    def visitor(self, label: str) -> Visitor | None:
        row = self.db.execute(
            "SELECT valid_start, valid_end, slots, uses_left FROM visitors WHERE label=?", (label,)
        ).fetchone()
        return None if row is None else Visitor(label, validity_of(*row[:3]), row[3])

    def visitors(self) -> list[dict[str, Any]]:
        cur = self.db.execute(
            "SELECT label, valid_start, valid_end, slots, uses_left FROM visitors ORDER BY label"
        )
        return [
            {
                "label": label,
                "valid_start": s,
                "valid_end": e,
                "slots": json.loads(sl),
                "uses_left": uses,
            }
            for label, s, e, sl, uses in cur
        ]

    # -- changing -------------------------------------------------------------------------
    def add(self, role: str, name: str, digest: bytes, length: int, **event: Any) -> str:
        """A new person with one passcode, numbered with the lowest free number (L-2)."""
        self._check_role(role)
        self._room_for_code(None)
        self._code_is_free(digest)
        with self.store.transaction():
            number = self._insert_person(role, name, **event)
            self.db.execute(
                "INSERT INTO passcodes (person, digest, length) VALUES (?, ?, ?)",
                (number, digest, length),
            )
        return number

    def _insert_person(self, role: str, name: str, **event: Any) -> str:
        """Within the caller's transaction: the lowest free number (L-2)."""
        taken = {r[0] for r in self.db.execute("SELECT number FROM people")}
        number = next((f"{n:03d}" for n in range(1, 1000) if f"{n:03d}" not in taken), None)
        if number is None:
            raise Refusal("full", "no free person number")
        self.db.execute(
            "INSERT INTO people (number, role, name, created) VALUES (?, ?, ?, ?)",
            (number, role, name, self._wall()),
        )
        self.store.append("person-added", person=number, detail=role, **event)
        return number

    @staticmethod
    def _check_role(role: str) -> None:
        if role not in ROLES:
            raise Refusal("bad-value", f"role must be one of {ROLES}")

    def rename(self, number: str, name: str, **event: Any) -> None:
        self._known(number)
        with self.store.transaction():
            self.db.execute("UPDATE people SET name=? WHERE number=?", (name, number))
            self.store.append("person-renamed", person=number, detail=name, **event)

    def delete(self, number: str, **event: Any) -> None:
        """L-6: never the last administrator nor the only person; all credentials go too."""
        self._known(number)
        role = self.db.execute("SELECT role FROM people WHERE number=?", (number,)).fetchone()[0]
        if self.count() == 1:
            raise Refusal("only-person", "the only person cannot be deleted")
        if role == "admin" and self.count("admin") == 1:
            raise Refusal("last-admin", "the last administrator cannot be deleted")
        codes, templates = (
            self.db.execute(f"SELECT count(*) FROM {table} WHERE person=?", (number,)).fetchone()[0]
            for table in ("passcodes", "templates")
        )
        with self.store.transaction():
            self.db.execute("DELETE FROM people WHERE number=?", (number,))  # all of it cascades
            self.store.append(
                "person-deleted",
                person=number,
                detail=f"{role}; deleted {codes} passcode(s), {templates} template(s)",
                **event,
            )

    def set_validity(
        self,
        number: str,
        start: float | None,
        end: float | None,
        slots: list[list[int]],
        **event: Any,
    ) -> None:
        self._known(number)
        self._check_window(start, end, slots)
        with self.store.transaction():
            self.db.execute(
                "UPDATE people SET valid_start=?, valid_end=?, slots=? WHERE number=?",
                (start, end, slots_to_json(slots), number),
            )
            self.store.append(
                "validity-set",
                person=number,
                detail=json.dumps({"start": start, "end": end, "slots": slots}),
                **event,
            )

    def set_status(self, number: str, enabled: bool, **event: Any) -> None:
        """Matter's UserStatus (issue 15): a disabled person keeps every credential, and
        every one is refused until they are enabled again. Never the last administrator
        who is enabled: someone must still be able to open the menu (L-13)."""
        self._known(number)
        role = self.role(number)
        last = self._enabled_admins() == 1 and not self.standing(number).disabled
        if not enabled and role == "admin" and last:
            raise Refusal("last-admin", "the last enabled administrator cannot be disabled")
        status = "enabled" if enabled else "disabled"
        with self.store.transaction():
            self.db.execute("UPDATE people SET status=? WHERE number=?", (status, number))
            self.store.append(f"person-{status}", person=number, detail=role, **event)

    def _enabled_admins(self) -> int:
        row = self.db.execute(
            "SELECT count(*) FROM people WHERE role='admin' AND status='enabled'"
        ).fetchone()
        return int(row[0])

    def set_credential_rule(self, number: str, rule: str, **event: Any) -> None:
        """Matter's CredentialRule (issue 15): single, dual or tri different credentials."""
        self._known(number)
        if rule not in CREDENTIAL_RULES:
            raise Refusal("bad-value", f"a credential rule is one of {', '.join(CREDENTIAL_RULES)}")
        with self.store.transaction():
            self.db.execute("UPDATE people SET credential_rule=? WHERE number=?", (rule, number))
            self.store.append("credential-rule-set", person=number, detail=rule, **event)

    def set_duress(self, number: str, digest: bytes, length: int, **event: Any) -> None:
        """L-8: one duress code per person, replacing an earlier one."""
        self._known(number)
        self._code_is_free(digest)
        with self.store.transaction():
            self.db.execute("DELETE FROM passcodes WHERE person=? AND kind='duress'", (number,))
            self.db.execute(
                "INSERT INTO passcodes (person, digest, length, kind) VALUES (?, ?, ?, 'duress')",
                (number, digest, length),
            )
            self.store.append("duress-set", person=number, **event)

    def add_visitor(
        self,
        label: str,
        digest: bytes,
        length: int,
        start: float | None,
        end: float | None,
        uses: int | None,
        **event: Any,
    ) -> None:
        if self.visitor(label) is not None:
            raise Refusal("exists", f"a visitor code named {label!r} exists")
        if uses is not None and uses < 1:
            raise Refusal("bad-value", "uses must be 1 or more")
        now = self._wall()  # 0 when the lock lost the time: the window is kept as given
        if end is not None and now and end <= now:  # whoever asks: the CLI, the app, a fleet
            raise Refusal("bad-value", "the window has already ended")
        self._check_window(start, end, [])
        self._room_for_code(None)
        self._code_is_free(digest)
        with self.store.transaction():
            self.db.execute(
                "INSERT INTO visitors (label, digest, length, valid_start, valid_end, "
                "uses_left, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (label, digest, length, start, end, uses, self._wall()),
            )
            self.store.append(
                "visitor-added", detail=f"{label}; uses {uses or 'unlimited'}", **event
            )

    def delete_visitor(self, label: str, **event: Any) -> None:
        if self.visitor(label) is None:
            raise Refusal("unknown", f"no visitor code named {label!r}")
        with self.store.transaction():
            self.db.execute("DELETE FROM visitors WHERE label=?", (label,))
            self.store.append("visitor-deleted", detail=label, **event)

    def add_template(
        self,
        kind: str,
        person: str,
        seal: Callable[[str, int], bytes],
        *,
        slot: int,
        role: str = "",
        **event: Any,
    ) -> tuple[str, int]:
        """Keep a sealed template in the person's slot, if still free (L-3 limits apply).

        No person but a role: a new person, created with this as their first credential
        in the same transaction (L-14), so there is never a person with nothing to open.
        """
        if slot not in self._free_slots(kind, person, role=role):
            whose = person or "a new person"
            raise Refusal("slot-taken", f"{kind} slot {slot} of {whose} is taken")
        with self.store.transaction():
            if not person:
                person = self._insert_person(role, "", **event)
            self.db.execute(
                "INSERT INTO templates VALUES (?, ?, ?, ?, ?)",
                (kind, person, slot, seal(person, slot), self._wall()),
            )
            self.store.append(
                "template-added", person=person, method=kind, detail=f"slot {slot}", **event
            )
        return person, slot

    def free_template_slot(self, kind: str, person: str, *, role: str = "") -> int:
        """The slot a new template of the person's would take (a new person's: 1, given a
        role); Refusal when full (L-3)."""
        return min(self._free_slots(kind, person, role=role))

    def _free_slots(self, kind: str, person: str, *, role: str) -> set[int]:
        """The person's free slots of a kind (never empty); Refusal when full (L-3)."""
        if person:
            self._known(person)
        else:
            self._check_role(role)
        lock_limit, person_limit = (self.capacity[k] for k in TEMPLATE_LIMITS[kind])
        (total,) = self.db.execute(
            "SELECT count(*) FROM templates WHERE kind=?", (kind,)
        ).fetchone()
        taken = {
            r[0]
            for r in self.db.execute(
                "SELECT slot FROM templates WHERE kind=? AND person=?", (kind, person)
            )
        }
        if total >= lock_limit:
            raise Refusal("full", f"the lock holds {total} {kind} templates, its most")
        if len(taken) >= person_limit:
            raise Refusal("full", f"{person} has {len(taken)} {kind} templates, the most")
        return set(range(1, person_limit + 1)) - taken

    def holds_template(self, kind: str, person: str, slot: int) -> bool:
        """Whether a match of this person's slot is possible at all (issue 11)."""
        row = self.db.execute(
            "SELECT 1 FROM templates WHERE kind=? AND person=? AND slot=?", (kind, person, slot)
        ).fetchone()
        return row is not None

    def templates(self, kind: str, offset: int, limit: int) -> list[tuple[str, int, bytes]]:
        return [
            (p, s, bytes(b))
            for p, s, b in self.db.execute(
                "SELECT person, slot, sealed FROM templates WHERE kind=? ORDER BY person, slot "
                "LIMIT ? OFFSET ?",
                (kind, limit, offset),
            )
        ]

    def use_visitor(self, label: str) -> None:
        """Count one use; within the caller's transaction, beside the unlock event."""
        self.db.execute(
            "UPDATE visitors SET uses_left = uses_left - 1 WHERE label=? AND uses_left IS NOT NULL",
            (label,),
        )

    # -- checks ---------------------------------------------------------------------------
    def _known(self, number: str) -> None:
        if not self.exists(number):
            raise Refusal("unknown-person", f"no person numbered {number}")

    def _code_is_free(self, digest: bytes) -> None:
        if digest in self.codes():
            raise Refusal("code-in-use", "that passcode is already in use")

    def _room_for_code(self, person: str | None) -> None:
        """L-3: a full store refuses, and touches nothing."""
        total = self.db.execute(
            "SELECT (SELECT count(*) FROM passcodes WHERE kind='normal') + "
            "(SELECT count(*) FROM visitors)"
        ).fetchone()[0]
        if total >= self.capacity["lock_passcodes"]:
            raise Refusal("full", f"the lock holds {total} passcodes, its most")

    @staticmethod
    def _check_window(start: float | None, end: float | None, slots: list[list[int]]) -> None:
        if start is not None and end is not None and end <= start:
            raise Refusal("bad-value", "the validity must end after it starts")
        for mask, a, b in slots:
            if not (0 < mask < 128 and 0 <= a < b <= 24 * 60):
                raise Refusal("bad-value", f"bad weekly slot {mask}/{a}-{b}")
