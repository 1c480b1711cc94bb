"""The Idempotency-Key protocol, shared by message logging (POST messages) and the chat proxy.

A request sent with a key claims it (one row per conversation and key), does its writes and stores the
answer to replay (completes the claim). A second request with the key gets a verdict on the stored row
(idempotency_verdict): replay the answer, 409 while the first still runs, or refuse another body. The two
writers differ only in what a claim that never completed means:

- message logging (idempotency_write) stores the turns and the answer in one transaction, so such a claim
  proves nothing was stored: after SUPPORT_IDEMPOTENCY_LEASE_S a retry takes it over;
- the chat proxy (idempotency_chat_claim, idempotency_finish) stores the customer's turn first and the reply
  after Claude answers, so such a claim is resumed from the stored turn (idempotency_resume), never redone.

Services hand data back; the API turns verdicts into responses (support/api/idempotency.py).
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from support import db
from support.db_retry import db_retry
from support.models import (
    Conversation,
    IdempotencyRecord,
    Message,
)

logger = logging.getLogger(__name__)


def request_fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class IdempotencyLeaseLost(Exception):
    """Another request took over this Idempotency-Key (ours looked dead); this one must not store its turns."""


def idempotency_claim(
    *, conversation: Conversation, key: str, fingerprint: str, take_over_stale: bool = False
) -> tuple[IdempotencyRecord, bool]:
    """Reserve `key` for this conversation. Returns (record, True) for the first request, else the existing one.

    With `take_over_stale` (message_log_once only): a claim still unfinished after
    SUPPORT_IDEMPOTENCY_LEASE_S belongs to a request that died (the database went away under it and
    the claim could not even be released). Where the turns and the stored response are written in
    one transaction, such a claim proves nothing of that request was stored, so the retry takes it
    over instead of answering 409 for ever. Its created_at is the lease. The chat proxy stores the
    customer's turn before Claude answers, so it must not take over.
    """
    try:
        record = IdempotencyRecord(conversation=conversation, key=key, fingerprint=fingerprint)
        with transaction.atomic():  # a savepoint, so the IntegrityError leaves an outer transaction usable
            db.rows_insert(IdempotencyRecord, [record])
        return record, True
    except IntegrityError:
        existing = IdempotencyRecord.objects.get(conversation=conversation, key=key)
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SUPPORT_IDEMPOTENCY_LEASE_S)
    if take_over_stale and existing.response is None and existing.fingerprint == fingerprint:
        if existing.created_at < stale and db.writes_are_atomic():
            # Compare-and-set on the old lease: of several retries, exactly one takes it over.
            taken = IdempotencyRecord.objects.filter(
                pk=existing.pk, response__isnull=True, created_at=existing.created_at
            ).update(created_at=now)
            if taken:
                existing.created_at = now
                return existing, True
    return existing, False


def idempotency_complete(*, record: IdempotencyRecord, response: Any) -> None:
    """Store the answer to replay; refuses (IdempotencyLeaseLost) if the claim was taken over meanwhile."""
    # The statement prepared once (support.db), not compiled by the ORM: this runs on every keyed pair on MongoDB.
    done = db.row_update(
        IdempotencyRecord,
        pk=record.pk,
        where={"response": None, "created_at": record.created_at},
        at_most={},
        add={},
        assign={"response": response},
        raise_to={},
    )
    if not done:
        raise IdempotencyLeaseLost(record.key)


def idempotency_turn_attach(*, record: IdempotencyRecord, user_message: Message) -> None:
    """Note the customer's turn a chat key stored: from now on the key is never released (see idempotency_resume)."""
    IdempotencyRecord.objects.filter(pk=record.pk).update(user_message=user_message)
    record.user_message = user_message


def idempotency_abandon(*, record: IdempotencyRecord) -> None:
    """Give up a chat claim whose reply could not be stored, so a same-key retry resumes it without waiting
    for the lease. The customer's turn stays stored and the key stays taken. When the database refuses even
    this, a note in the shared cache does the same; failing both, the lease runs out on its own."""
    # The lease start moved back by one lease: dead at once, yet still about as old as the claim, so
    # idempotency_prune keeps it (and a retry can resume it) until the TTL has passed.
    lapsed = record.created_at - timedelta(seconds=settings.SUPPORT_IDEMPOTENCY_LEASE_S + 1)
    try:
        IdempotencyRecord.objects.filter(pk=record.pk, response__isnull=True, created_at=record.created_at).update(
            created_at=lapsed
        )
        return
    except db.DATABASE_ERRORS as exc:
        logger.warning("could not mark idempotency key %s for resuming: %s", record.key, exc)
    try:
        cache.set(_abandoned_cache_key(record), True, settings.SUPPORT_IDEMPOTENCY_LEASE_S)
    except Exception as exc:  # noqa: BLE001 - the lease is the last resort
        logger.warning("could not note idempotency key %s for resuming: %s", record.key, exc)


def _abandoned_cache_key(record: IdempotencyRecord) -> str:
    return f"idempotency-abandoned:{record.pk}"


def idempotency_resume(*, record: IdempotencyRecord, fingerprint: str) -> bool:
    """Take over a chat claim whose customer turn is stored but whose request died or gave up (see
    idempotency_abandon; or its lease ran out). True for exactly one of several concurrent retries."""
    if record.response is not None or record.user_message_id is None or record.fingerprint != fingerprint:
        return False
    stale = record.created_at < timezone.now() - timedelta(seconds=settings.SUPPORT_IDEMPOTENCY_LEASE_S)
    if not stale:
        try:
            stale = bool(cache.get(_abandoned_cache_key(record)))
        except Exception:  # noqa: BLE001 - without the note, the lease decides
            stale = False
    if not stale:
        return False
    now = timezone.now()
    # Compare-and-set on the old lease: of several retries, exactly one resumes.
    taken = IdempotencyRecord.objects.filter(pk=record.pk, response__isnull=True, created_at=record.created_at).update(
        created_at=now
    )
    if taken:
        record.created_at = now
        with suppress(Exception):  # the note is spent; a later failure writes a new one
            cache.delete(_abandoned_cache_key(record))
    return bool(taken)


def idempotency_release(*, record: IdempotencyRecord) -> None:
    """Forget a claim whose request failed, so the client's retry runs it again."""
    try:
        # Only an unfinished claim still ours: if the commit went through although the client saw an
        # error (the database died before answering), the stored response must stay for the replay.
        IdempotencyRecord.objects.filter(pk=record.pk, response__isnull=True, created_at=record.created_at).delete()
    except db.DATABASE_ERRORS as exc:
        # The failure that got us here is usually the database itself; report that one, not this.
        logger.warning("could not release idempotency key %s: %s", record.key, exc)


class IdempotencyVerdict(enum.Enum):
    """What a request finds under a key another request claimed."""

    OTHER_BODY = "other_body"  # the key was used with a different request body: refused (400)
    RUNNING = "running"  # the first request has not stored its answer yet: 409, retry shortly
    REPLAY = "replay"  # the stored answer is replayed


def idempotency_verdict(*, record: IdempotencyRecord, fingerprint: str) -> IdempotencyVerdict:
    if record.fingerprint != fingerprint:
        return IdempotencyVerdict.OTHER_BODY
    if record.response is None:
        return IdempotencyVerdict.RUNNING
    return IdempotencyVerdict.REPLAY


@dataclass
class IdempotencyClaim:
    """A request's hold on its key: `first` when this request claimed it (else `record` is the other's,
    or None without a key). `unwritten` holds (conversation, key, fingerprint) of a claim whose row is
    written only with its answer (idempotency_write on SQLite)."""

    record: IdempotencyRecord | None
    first: bool = False
    completed: bool = False
    unwritten: tuple[Conversation, str, str] | None = None

    def complete(self, *, response: Any) -> None:
        """Store the answer to replay (idempotency_complete), or write the row with it."""
        if not self.first:
            raise RuntimeError("Only the request that claimed the key completes it.")
        if self.unwritten is not None:
            conversation, key, fingerprint = self.unwritten
            try:
                # The write lock has been held since the key was looked up: no other request can hold it.
                record = IdempotencyRecord(
                    conversation=conversation, key=key, fingerprint=fingerprint, response=response
                )
                db.rows_insert(IdempotencyRecord, [record])
                self.record = record
            except IntegrityError as exc:  # only if the lock was not exclusive after all: nothing is kept
                raise IdempotencyLeaseLost(key) from exc
        elif self.record is not None:
            idempotency_complete(record=self.record, response=response)
        else:
            raise RuntimeError("Only the request that claimed the key completes it.")
        self.completed = True


@contextmanager
def idempotency_write(*, conversation: Conversation, key: str, fingerprint: str) -> Iterator[IdempotencyClaim]:
    """Claim `key`, run the block's writes and complete the claim, all or nothing where the database allows.

    The block checks `claim.first`: when False the key was used already (`claim.record` is the other
    request's row, for idempotency_verdict) and it writes nothing. When True it writes, then calls
    `claim.complete(response=...)` with the answer to replay: the answer is stored in the same transaction
    as the writes, so a key is never marked done without its writes, nor writes stored under a key left
    running (a claim past its lease is taken over by the retry: idempotency_claim's `take_over_stale`).

    SQLite: one IMMEDIATE transaction looks the key up, runs the writes and writes the key's row once, with
    its answer: the write lock makes the lookup final, and a failure leaves nothing behind. MongoDB: the
    claim comes first, on its own (a duplicate-key error would abort a transaction), then the rest runs in
    a transaction on a replica set; on a standalone server there are no transactions (README).
    """
    if not db.claim_before_transaction():
        with db.write_transaction():
            existing = db.row_by(IdempotencyRecord, conversation=conversation.pk, key=key)
            claim = IdempotencyClaim(record=existing, first=existing is None)
            if claim.first:
                claim.unwritten = (conversation, key, fingerprint)
            yield claim
            if claim.first and not claim.completed:
                raise RuntimeError(f"Idempotency-Key {key} was claimed but its answer was never stored.")
        return
    record, first = idempotency_claim(conversation=conversation, key=key, fingerprint=fingerprint, take_over_stale=True)
    claim = IdempotencyClaim(record=record, first=first)
    if not first:
        yield claim
        return
    try:
        with db.write_transaction():
            yield claim
            if not claim.completed:
                raise RuntimeError(f"Idempotency-Key {key} was claimed but its answer was never stored.")
    except BaseException:
        idempotency_release(record=record)
        raise


@contextmanager
def idempotency_chat_claim(*, conversation: Conversation, key: str, fingerprint: str) -> Iterator[IdempotencyClaim]:
    """The chat proxy's claim, in one commit with the block's writes (the customer's turn, which the block
    notes on the claim with idempotency_turn_attach). Without a key the claim is empty (`record` None).

    When the block fails the key is freed, unless the customer's turn may be stored (no transactions on a
    standalone MongoDB): a key whose turn is stored must stay, so the retry resumes instead of storing the
    turn twice. django.db.transaction.atomic() is a no-op on MongoDB, hence the explicit release.
    """
    claim = IdempotencyClaim(record=None)
    try:
        with transaction.atomic():
            if key:
                claim.record, claim.first = idempotency_claim(
                    conversation=conversation, key=key, fingerprint=fingerprint
                )
            yield claim
    except BaseException:
        record = claim.record
        if record is not None and claim.first and (record.user_message_id is None or db.writes_are_atomic()):
            idempotency_release(record=record)
        raise


def idempotency_finish(*, record: IdempotencyRecord, response: Any | None, deadline: float) -> None:
    """Complete a chat claim once the reply is stored (retrying until `deadline`, monotonic), so a retry
    replays it. With no reply (`response` None) or when completing fails, the customer's turn is stored
    anyway: the key is kept and abandoned, so a same-key retry resumes the turn at once."""
    if response is None:
        idempotency_abandon(record=record)
        return
    try:
        db_retry(
            lambda: idempotency_complete(record=record, response=response),
            deadline=deadline,
            what="completing the Idempotency-Key",
        )
    except Exception:
        # The reply is stored; a same-key retry finds it (chat_turn_resume) and replays it.
        logger.exception("could not complete idempotency key %s", record.key)
        idempotency_abandon(record=record)


def idempotency_prune(*, older_than: datetime, batch_size: int = 1000) -> int:
    """Delete the keys claimed before `older_than` (SUPPORT_IDEMPOTENCY_TTL_HOURS ago, say); returns how many.

    A batch at a time by the indexed created_at, so neither database holds one huge delete. An abandoned
    chat claim's lease start is moved back by one lease only (idempotency_abandon), so it is kept, and
    resumable, for the TTL like any other key.
    """
    deleted = 0
    while True:
        pks = list(
            IdempotencyRecord.objects.filter(created_at__lt=older_than)
            .order_by("created_at")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not pks:
            return deleted
        count, _ = IdempotencyRecord.objects.filter(pk__in=pks).delete()
        deleted += count
