"""Errors answered trailers-only without content-type (Golem's SDK on grpclib 0.2.4) keep their status.

A raw HTTP/2 server (the `h2` library, no grpclib) answers every call the way old grpclib's server answers
an error: one HEADERS frame with `:status`, `grpc-status` and `grpc-message`, no `content-type`, stream ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import h2.config
import h2.connection
import h2.events
import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from apps.sdk.channel import AppChannel
from apps.sdk.client import RequestorAppClient

ReplyHeaders = list[tuple[str, str]]


@asynccontextmanager
async def raw_h2_server(headers: ReplyHeaders, body: bytes | None) -> AsyncIterator[int]:
    """Answers every request with `headers` (and `body` as one DATA frame, if given), then ends it."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        connection.initiate_connection()
        writer.write(connection.data_to_send())
        while data := await reader.read(65536):
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.StreamEnded):
                    connection.send_headers(event.stream_id, headers, end_stream=body is None)
                    if body is not None:
                        connection.send_data(event.stream_id, body, end_stream=True)
            writer.write(connection.data_to_send())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def create_task_error(
    channel_type: type[Channel], headers: ReplyHeaders, body: bytes | None
) -> GRPCError:
    async with raw_h2_server(headers, body) as port:
        client = RequestorAppClient(channel_type("127.0.0.1", port), timeout=5)
        try:
            await client.create_task("t1", 1, {"difficulty": -1})
        except GRPCError as exc:
            return exc
        finally:
            client.close()
    raise AssertionError("the call succeeded")


GOLEM_ERROR: ReplyHeaders = [(":status", "200"), ("grpc-status", "13"), ("grpc-message", "difficulty=-1")]


@pytest.mark.parametrize(
    ("status", "wire_message", "message"),
    [
        (Status.INTERNAL, "difficulty=-1", "difficulty=-1"),
        (Status.INVALID_ARGUMENT, "no input", "no input"),
        (Status.NOT_FOUND, "100%25 gone", "100% gone"),  # percent-encoded on the wire (gRPC spec)
    ],
)
def test_trailers_only_error_without_content_type_keeps_status_and_message(
    status: Status, wire_message: str, message: str
) -> None:
    headers = [(":status", "200"), ("grpc-status", str(status.value)), ("grpc-message", wire_message)]
    error = asyncio.run(create_task_error(AppChannel, headers, None))
    assert (error.status, error.message) == (status, message)


def test_grpclib_alone_loses_the_status() -> None:
    """What AppChannel fixes: plain grpclib 0.4.9 reads the same reply as UNKNOWN."""
    error = asyncio.run(create_task_error(Channel, GOLEM_ERROR, None))
    assert (error.status, error.message) == (Status.UNKNOWN, "Missing content-type header")


def test_a_reply_with_data_but_no_content_type_is_still_refused() -> None:
    """Only trailers-only replies are let through: a message of unknown type is not decoded."""
    headers = [(":status", "200")]
    error = asyncio.run(create_task_error(AppChannel, headers, b"\x00\x00\x00\x00\x00"))
    assert (error.status, error.message) == (Status.UNKNOWN, "Missing content-type header")
