"""The data of one sandbox location: contacts, their children, calendars, fields, tags.

``Account.seeded`` builds a deterministic location of any size with the mess of real
data: unicode names, nulls, mixed custom-field value types, many contacts sharing one
dateUpdated, contacts with no children and a few with hundreds.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

SANDBOX_LOCATION = "loc-sandbox-0001"
BASE_TIME = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

FIRST_NAMES = (
    "Zoë", "José", "Ólafur", "Ngọc", "Şule", "李", "Анна", "Søren", "Amélie", "Chloé",
    "Björk", "Mateusz", "Aoife", "Jürgen", "Nuño", "Priya", "O'Neil", "Liam", None, "",
)  # fmt: skip
LAST_NAMES = (
    "García", "Müller", "Nguyễn", "O'Brien", "Łukasiewicz", "王", "Smith", "Dubois",
    "Ødegaard", "Kovačević", None, "van der Berg",
)  # fmt: skip
TAGS = ("lead", "customer", "vip", "newsletter", "webinar", "cold", "réactivé")
SOURCES = ("website", "facebook", "import", "api", None)
CALENDARS = ("cal-sales", "cal-support", "cal-demo")
CUSTOM_FIELDS = (
    {"id": "cf-tier", "name": "Tier", "fieldKey": "contact.tier", "dataType": "SINGLE_OPTIONS"},
    {"id": "cf-score", "name": "Score", "fieldKey": "contact.score", "dataType": "NUMERICAL"},
    {
        "id": "cf-interests",
        "name": "Interests",
        "fieldKey": "contact.interests",
        "dataType": "MULTIPLE_OPTIONS",
    },
    {"id": "cf-notes", "name": "Notes", "fieldKey": "contact.notes", "dataType": "LARGE_TEXT"},
)


def iso_ms(moment: dt.datetime) -> str:
    """GHL's usual form: 2024-01-01T00:00:00.000Z."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def epoch_ms(value: Any) -> int:  # noqa: ANN401
    """Read an ISO string or an epoch number (ms) as epoch milliseconds."""
    if isinstance(value, (int, float)):
        return int(value)
    parsed = dt.datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


@dataclass
class Account:
    """Everything one location holds; the API reads and mutates it."""

    location_id: str = SANDBOX_LOCATION
    contacts: dict[str, JSON] = field(default_factory=dict)
    tasks: dict[str, list[JSON]] = field(default_factory=dict)
    notes: dict[str, list[JSON]] = field(default_factory=dict)
    appointments: dict[str, list[JSON]] = field(default_factory=dict)
    calendars: list[JSON] = field(default_factory=list)
    custom_fields: list[JSON] = field(default_factory=list)
    tags: list[JSON] = field(default_factory=list)
    #: Bumped on every write, so the search index knows when to rebuild.
    version: int = 0

    # Writes

    def add_contact(self, contact: JSON) -> None:
        """Create or replace a contact."""
        self.contacts[contact["id"]] = contact
        self.version += 1

    def delete_contact(self, contact_id: str) -> None:
        """Delete a contact and everything that hangs off it."""
        self.contacts.pop(contact_id, None)
        for children in (self.tasks, self.notes, self.appointments):
            children.pop(contact_id, None)
        self.version += 1

    def touch(self, contact_ids: list[str], when: dt.datetime) -> None:
        """Edit contacts (as in GHL's UI): their dateUpdated moves to ``when``."""
        for contact_id in contact_ids:
            if contact_id in self.contacts:
                self.contacts[contact_id]["dateUpdated"] = iso_ms(when)
        self.version += 1

    # Reads

    def children(self, kind: str) -> dict[str, list[JSON]]:
        """``tasks``, ``notes`` or ``appointments`` by contact id."""
        source: dict[str, list[JSON]] = {
            "tasks": self.tasks,
            "notes": self.notes,
            "appointments": self.appointments,
        }[kind]
        return source

    def truth(self) -> JSON:
        """What a complete sync must contain: ids per stream."""
        return {
            "contacts": sorted(self.contacts),
            **{
                kind: sorted(row["id"] for rows in self.children(kind).values() for row in rows)
                for kind in ("tasks", "notes", "appointments")
            },
        }

    # Seeded data

    @classmethod
    def seeded(cls, contacts: int, seed: int = 7, location_id: str = SANDBOX_LOCATION) -> Account:
        """A deterministic, realistically messy location with ``contacts`` contacts."""
        rng = random.Random(seed)  # noqa: S311  (test data, not secrets)
        account = cls(location_id=location_id)
        account.calendars = [
            {"id": cal, "name": cal.removeprefix("cal-").title(), "locationId": location_id, "isActive": True}
            for cal in CALENDARS
        ]
        account.custom_fields = [dict(f, locationId=location_id, model="contact") for f in CUSTOM_FIELDS]
        account.tags = [{"id": f"tag-{i}", "name": t, "locationId": location_id} for i, t in enumerate(TAGS)]
        # Imports stamp many contacts with one dateUpdated: a few shared instants.
        import_instants = [BASE_TIME + dt.timedelta(days=rng.randrange(700)) for _ in range(8)]
        for index in range(contacts):
            added = BASE_TIME + dt.timedelta(seconds=rng.randrange(700 * 86400))
            later_imports = [moment for moment in import_instants if moment >= added]
            if later_imports and rng.random() < 0.5:  # noqa: PLR2004
                updated = rng.choice(later_imports)
            else:
                updated = added + dt.timedelta(seconds=rng.randrange(30 * 86400))
            contact = account._seed_contact(rng, index, added, updated)
            account.contacts[contact["id"]] = contact
            account._seed_children(rng, contact["id"], index, added)
        account.version += 1
        return account

    def _seed_contact(self, rng: random.Random, index: int, added: dt.datetime, updated: dt.datetime) -> JSON:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = None if rng.random() < 0.12 else f"person{index}@example.com"  # noqa: PLR2004
        phone = None if rng.random() < 0.18 else f"+1555{index:07d}"  # noqa: PLR2004
        custom: list[JSON] = [{"id": "cf-tier", "value": rng.choice(["gold", "silver", "bronze"])}]
        if rng.random() < 0.7:  # noqa: PLR2004
            custom.append(
                {"id": "cf-score", "value": rng.choice([rng.randrange(100), round(rng.random() * 10, 2)])}
            )
        if rng.random() < 0.5:  # noqa: PLR2004
            custom.append({"id": "cf-interests", "value": rng.sample(["seo", "ads", "crm", "ai"], k=2)})
        if rng.random() < 0.2:  # noqa: PLR2004
            custom.append({"id": "cf-notes", "value": None})
        return {
            "id": f"con-{index:07d}",
            "locationId": self.location_id,
            "firstNameLowerCase": first.lower() if first else first,
            "lastNameLowerCase": last.lower() if last else last,
            "email": email,
            "phone": phone,
            "phoneLabel": None if phone is None else "Mobile",
            "country": rng.choice(["US", "DE", "VN", "BR", None]),
            "city": rng.choice(["Zürich", "São Paulo", "Hà Nội", "Austin", None]),
            "source": rng.choice(SOURCES),
            "type": rng.choice(["lead", "customer"]),
            "dnd": rng.random() < 0.05,  # noqa: PLR2004
            "tags": rng.sample(TAGS, k=rng.randrange(4)),
            "customFields": custom,
            "additionalEmails": [],
            "additionalPhones": [],
            "followers": [],
            "opportunities": [],
            "dateAdded": iso_ms(added),
            "dateUpdated": iso_ms(updated),
            # Search rows carry dateOfBirth as epoch milliseconds.
            "dateOfBirth": None if rng.random() < 0.6 else epoch_ms(f"19{rng.randrange(50, 99)}-06-15"),  # noqa: PLR2004
            "assignedTo": rng.choice(["user-1", "user-2", None]),
            "businessId": None,
            "validEmail": None if email is None else True,
        }

    def _seed_children(self, rng: random.Random, contact_id: str, index: int, added: dt.datetime) -> None:
        heavy = index % 997 == 500  # noqa: PLR2004  (a few contacts with hundreds of children)
        counts = [rng.randrange(200, 301) if heavy else rng.choice((0, 0, 0, 1, 1, 2, 3)) for _ in range(3)]
        self.tasks[contact_id] = [self._task(rng, contact_id, n, added) for n in range(counts[0])]
        self.notes[contact_id] = [self._note(rng, contact_id, n, added) for n in range(counts[1])]
        self.appointments[contact_id] = [
            self._appointment(rng, contact_id, n, added) for n in range(counts[2])
        ]

    @staticmethod
    def _task(rng: random.Random, contact_id: str, n: int, added: dt.datetime) -> JSON:
        return {
            "id": f"tsk-{contact_id[4:]}-{n}",
            "title": rng.choice(["Call back", "Send quote", "Relancer le client ✉"]),
            "body": rng.choice([None, "", "Discuss pricing"]),
            "assignedTo": rng.choice(["user-1", None]),
            "dueDate": iso_ms(added + dt.timedelta(days=rng.randrange(1, 60))),
            "completed": rng.random() < 0.5,  # noqa: PLR2004
            "contactId": contact_id,
            "dateAdded": iso_ms(added + dt.timedelta(hours=n)),
        }

    @staticmethod
    def _note(rng: random.Random, contact_id: str, n: int, added: dt.datetime) -> JSON:
        return {
            "id": f"nte-{contact_id[4:]}-{n}",
            "body": rng.choice(["Called, no answer", "Très intéressé 👍", "見積もりを送付", ""]),
            "userId": rng.choice(["user-1", "user-2"]),
            # Offsets other than Z, as some GHL services send them.
            "dateAdded": (added + dt.timedelta(hours=n))
            .astimezone(dt.timezone(dt.timedelta(hours=2)))
            .isoformat(),
            "contactId": contact_id,
        }

    @staticmethod
    def _appointment(rng: random.Random, contact_id: str, n: int, added: dt.datetime) -> JSON:
        start = (added + dt.timedelta(days=rng.randrange(1, 90), hours=n)).replace(
            minute=0, second=0, microsecond=0
        )
        return {
            "id": f"apt-{contact_id[4:]}-{n}",
            "calendarId": rng.choice(CALENDARS),
            "status": "booked",
            "appointmentStatus": rng.choice(["confirmed", "cancelled", "showed"]),
            "title": "Discovery call",
            "assignedUserId": "user-1",
            "notes": None,
            # The per-contact endpoint sends zone-less local times.
            "startTime": start.strftime("%Y-%m-%d %H:%M:%S"),
            "endTime": (start + dt.timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M:%S"),
            "address": None,
            "contactId": contact_id,
            "dateAdded": epoch_ms(iso_ms(added)),
            "dateUpdated": iso_ms(added),
            "users": [],
        }

    # Changes between runs

    def mutate(self, rng: random.Random, when: dt.datetime, *, scale: float = 0.01) -> JSON:
        """One round of edits (as users make between syncs); returns what changed."""
        ids = sorted(self.contacts)
        if not ids:
            return {"updated": [], "added": [], "deleted": [], "notes_added": [], "tasks_added": []}
        count = max(1, int(len(ids) * scale))
        updated = rng.sample(ids, k=min(count, len(ids)))
        self.touch(updated, when)
        notes_added, tasks_added = [], []
        for contact_id in updated[: max(1, count // 2)]:
            note = self._note(rng, contact_id, len(self.notes.setdefault(contact_id, [])), when)
            note["id"] = f"{note['id']}-{self.version}"
            self.notes[contact_id].append(note)
            notes_added.append(note["id"])
            task = self._task(rng, contact_id, len(self.tasks.setdefault(contact_id, [])), when)
            task["id"] = f"{task['id']}-{self.version}"
            self.tasks[contact_id].append(task)
            tasks_added.append(task["id"])
        added = []
        for n in range(max(1, count // 4)):
            index = 5_000_000 + self.version * 1000 + n
            contact = self._seed_contact(rng, index, when, when)
            self.contacts[contact["id"]] = contact
            self._seed_children(rng, contact["id"], index, when)
            added.append(contact["id"])
        deleted = [cid for cid in ids if cid not in updated][:1]
        for contact_id in deleted:
            self.delete_contact(contact_id)
        self.version += 1
        return {
            "updated": updated,
            "added": added,
            "deleted": deleted,
            "notes_added": notes_added,
            "tasks_added": tasks_added,
        }
