"""A provider's results on their way to its requestor: several in one call where the requestor takes them.

Every result ready goes up in one SubmitResults call (each header followed by its file's chunks), answered
with one SubmitVerdict per result as each is judged. One such call is made at a time, and it stays open
while it awaits verdicts: the results that become ready meanwhile go in it too (for up to CALL_SPAN_S),
those ready after it ended go together in the next, so a burst of results costs one stream, not one each.
A requestor from before SubmitResults answers UNIMPLEMENTED: from then on each result goes alone in a
SubmitResult call, as before, and the results of the refused call are sent that way.

Either way a result whose verdict did not come (the requestor unreachable, UNAVAILABLE while it restarts,
the stream broken mid-call) is sent again after a backoff while its lease lasts (and a minute more); a
result whose verdict came is never sent again. A result the requestor would not take (not this provider's,
no longer assigned, ...) gets that refusal as its verdict, its status set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from grpclib.client import Stream
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError

from protos import node_pb2 as npb
from protos.node_grpc import RequestorStub
from runtime.node.resources import HashedFile, read_chunks
from runtime.node.retry import Backoff, describe_failure
from runtime.node.store import now_ms

log = logging.getLogger(__name__)

DELIVERY_GRACE_MS = 60_000
"""How long past its lease deadline a result is still sent again (a restarting requestor may take it)."""
CALL_TIMEOUT_S = 300.0
CALL_SPAN_S = 60.0
"""How long one SubmitResults call takes further results; then it ends once its verdicts are in, and the next
call takes the results that became ready meanwhile."""


def transient(error: GRPCError) -> bool:
    """A refusal that passes: the requestor is shutting down (or restarting) and will be back."""
    return error.status is Status.UNAVAILABLE


class _Singly:
    """A delivery's outcome when the requestor turned out to lack SubmitResults: send it alone."""


SINGLY = _Singly()


@dataclass(eq=False)
class _Delivery:
    header: npb.ResultHeader
    result: HashedFile
    deadline_ms: int
    outcome: asyncio.Future[npb.SubmitVerdict | _Singly | None]

    @property
    def subtask_id(self) -> str:
        return self.header.subtask_id

    def expired(self) -> bool:
        return now_ms() > self.deadline_ms + DELIVERY_GRACE_MS

    def settle(self, outcome: npb.SubmitVerdict | _Singly | None) -> None:
        """Its outcome is known: tell the waiting `deliver`, and close the file unless it is still to go
        alone (then `deliver` sends and closes it)."""
        if not self.outcome.done():
            self.outcome.set_result(outcome)
        if outcome is not SINGLY:
            self.result.close()


class ResultDelivery:
    """Sends one provider's results to one requestor (module doc); `close()` when the provider stops."""

    def __init__(self, stub: RequestorStub, metadata: dict[str, str]) -> None:
        self._stub = stub
        self._metadata = metadata
        self._batches = True
        """False once the requestor answered SubmitResults with UNIMPLEMENTED."""
        self._ready: list[_Delivery] = []
        self._taken: list[_Delivery] = []
        """What the sender took from `_ready`: in its call, or waiting out the backoff to go again."""
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._closing = False
        self.calls = 0
        """SubmitResults and SubmitResult calls made (each one stream)."""

    async def deliver(
        self, header: npb.ResultHeader, result: HashedFile, deadline_ms: int
    ) -> npb.SubmitVerdict | None:
        """Send one result: its verdict (status 0: judged; else why it was not taken), or None if it was given
        up past its lease (logged). `result` is closed when this returns or is cancelled, or, if cancelled
        while a call carries its bytes, when that call ends."""
        if self._batches:
            delivery = _Delivery(header, result, deadline_ms, asyncio.get_running_loop().create_future())
            self._ready.append(delivery)
            self._wake.set()
            if self._sender is None:
                self._sender = asyncio.create_task(self._send_forever())
            try:
                outcome = await delivery.outcome
            except asyncio.CancelledError:
                if delivery in self._ready:  # no call took it: nobody else holds the file
                    self._ready.remove(delivery)
                    result.close()
                raise
            if not isinstance(outcome, _Singly):
                return outcome
        try:
            return await self._deliver_singly(header, result, deadline_ms)
        finally:
            result.close()

    async def close(self) -> None:
        """Stop sending; the results still held are dropped and their files closed."""
        self._closing = True  # grpclib may turn the cancellation of a call into an error of the call
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        for delivery in [*self._ready, *self._taken]:
            delivery.outcome.cancel()
            delivery.result.close()
        self._ready.clear()
        self._taken.clear()

    async def _send_forever(self) -> None:
        """Make one SubmitResults call at a time while there are results to send, until the requestor turns
        out to lack it."""
        backoff = Backoff()
        while self._batches and not self._closing:
            if not self._ready:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                failed = not await self._call()
            except Exception:  # a bug here must not leave every later result waiting forever
                log.exception("sending results failed")
                failed = True
                for delivery in self._taken:
                    delivery.settle(None)
            # A failed call (a requestor that is down refuses the connection at once) or results answered
            # UNAVAILABLE: what waits goes again after a backoff, never at once.
            unsettled = sum(not delivery.outcome.done() for delivery in self._taken)
            if failed or unsettled:
                delay = backoff.next_delay()
                log.warning("%d result(s) go again in %.1f s", unsettled + len(self._ready), delay)
                await asyncio.sleep(delay)
            else:
                backoff.reset()
            for delivery in self._taken:
                if delivery.outcome.cancelled():  # its subtask was dropped meanwhile
                    delivery.result.close()
                elif delivery.outcome.done():
                    continue
                elif delivery.expired():
                    log.error("subtask %s: giving up on delivery", delivery.subtask_id)
                    delivery.settle(None)
                else:
                    self._ready.append(delivery)
            self._taken = []
        if not self._closing:
            for delivery in self._ready:  # queued before the fallback: they go alone too
                delivery.settle(SINGLY)
            self._ready.clear()

    async def _call(self) -> bool:
        """One SubmitResults call (`_send`): settles each result whose outcome is known; the others stay
        unsettled, to be sent again. False if the call failed on the way (unreachable, broken,
        UNAVAILABLE)."""
        waiting: dict[str, _Delivery] = {}
        self.calls += 1
        try:
            async with self._stub.SubmitResults.open(
                metadata=self._metadata, timeout=CALL_TIMEOUT_S
            ) as stream:
                await stream.send_request()
                verdicts = asyncio.create_task(self._receive(stream, waiting))
                try:
                    try:
                        await self._send(stream, waiting, verdicts)
                    except (OSError, StreamTerminatedError, GRPCError):
                        if not verdicts.done():
                            raise
                    await verdicts  # if the requestor ended the call, its status says why
                finally:
                    verdicts.cancel()
        except (OSError, StreamTerminatedError, GRPCError) as exc:
            if isinstance(exc, GRPCError) and exc.status is Status.UNIMPLEMENTED:
                log.info("the requestor has no SubmitResults: one SubmitResult call a result from now on")
                self._batches = False
                for delivery in waiting.values():
                    delivery.settle(SINGLY)
                return True
            if isinstance(exc, GRPCError) and not transient(exc):
                for subtask_id, delivery in waiting.items():
                    delivery.settle(
                        npb.SubmitVerdict(
                            subtask_id=subtask_id, status=exc.status.value, reason=exc.message or ""
                        )
                    )
                return True
            log.warning("SubmitResults failed: %s", describe_failure(exc))
            return False
        return True

    async def _send(
        self,
        stream: Stream[npb.ResultPart, npb.SubmitVerdict],
        waiting: dict[str, _Delivery],
        verdicts: asyncio.Task[None],
    ) -> None:
        """Send every result ready, then each that becomes ready while the call awaits verdicts; end the
        request side once no verdict is awaited and no result is ready, or CALL_SPAN_S after it began. If
        the requestor ended the call first, its status is raised."""
        loop = asyncio.get_running_loop()
        closes = loop.time() + CALL_SPAN_S
        while True:
            self._wake.clear()
            ready, self._ready = self._ready, []
            for delivery in ready:
                waiting[delivery.subtask_id] = delivery
                self._taken.append(delivery)
                await stream.send_message(npb.ResultPart(header=delivery.header))
                for block in read_chunks(delivery.result.handle):
                    await stream.send_message(npb.ResultPart(data=block))
            if verdicts.done():
                await verdicts
                return
            left_s = closes - loop.time()
            if not waiting or left_s <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left_s)
        await stream.end()

    async def _receive(
        self,
        stream: Stream[npb.ResultPart, npb.SubmitVerdict],
        waiting: dict[str, _Delivery],
    ) -> None:
        """Take the call's verdicts as they come: each settles its result, but UNAVAILABLE (not taken now),
        which leaves it unsettled, to go again."""
        try:
            async for verdict in stream:
                answered = waiting.pop(verdict.subtask_id, None)
                if answered is None:
                    log.warning("a verdict for subtask %r, which this call did not carry", verdict.subtask_id)
                elif verdict.status == Status.UNAVAILABLE.value:
                    log.warning("subtask %s: result not taken now: %s", verdict.subtask_id, verdict.reason)
                else:
                    answered.settle(verdict)
                if not waiting:
                    self._wake.set()  # the sender ends the request side once nothing is awaited
        finally:
            self._wake.set()

    async def _deliver_singly(
        self, header: npb.ResultHeader, result: HashedFile, deadline_ms: int
    ) -> npb.SubmitVerdict | None:
        """Send one result in its own SubmitResult call, again after a backoff while it may be taken."""
        backoff = Backoff()
        while True:
            try:
                reply = await self._submit_result(header, result)
                return npb.SubmitVerdict(
                    subtask_id=header.subtask_id, verdict=reply.verdict, reason=reply.reason
                )
            except (OSError, StreamTerminatedError, GRPCError) as exc:
                if isinstance(exc, GRPCError) and not transient(exc):
                    return npb.SubmitVerdict(
                        subtask_id=header.subtask_id, status=exc.status.value, reason=exc.message or ""
                    )
                if now_ms() > deadline_ms + DELIVERY_GRACE_MS:
                    log.error("subtask %s: giving up on delivery: %s", header.subtask_id, exc)
                    return None
                await asyncio.sleep(backoff.next_delay())

    async def _submit_result(self, header: npb.ResultHeader, result: HashedFile) -> npb.SubmitReply:
        self.calls += 1
        async with self._stub.SubmitResult.open(metadata=self._metadata, timeout=CALL_TIMEOUT_S) as stream:
            await stream.send_message(npb.ResultPart(header=header))
            for block in read_chunks(result.handle):
                await stream.send_message(npb.ResultPart(data=block))
            await stream.end()
            reply = await stream.recv_message()
        assert reply is not None
        return reply
