"""Bounds on what crosses a gRPC connection: message sizes and the length of error messages.

grpclib (0.4.9) has no maximum message size: a peer announcing a 300 MB message makes the receiver
buffer all of it before decoding. Here every server (`BoundedServer`) and client (`BoundedChannel`)
refuses a message longer than `MAX_MESSAGE_BYTES` as soon as its 5-byte length prefix is read, with
RESOURCE_EXHAUSTED, before any of its body is taken off the connection. A server may give some methods
a smaller (or larger) limit for the requests it receives (`method_limits`, keyed by the call's path).
A server's HTTP/2 window of each stream is its message limit (plus the prefix, from 64 KiB up to grpclib's
4 MiB): a peer cannot push more bytes of a request than one message of its method before the server has
read the prefix; a flood of refused 600 KB messages cost every other call as much as reading them did.

grpclib's HPACK encoding of a header takes time quadratic in its length, so an error message that
echoes unbounded input (a 600 KB id) stalls every call on the server. `short_message` cuts error text
to `MAX_ERROR_CHARS`; services apply it where they turn errors into statuses, and `BoundedServer`
cuts any longer `grpc-message` it is about to send as a backstop.
"""

from __future__ import annotations

from asyncio import BaseTransport
from collections.abc import Callable, Mapping
from typing import Any

from grpclib.client import Channel
from grpclib.config import Configuration
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.protocol import AbstractHandler, Connection, H2Protocol, Stream
from grpclib.server import Server
from grpclib.utils import Wrapper

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_ERROR_CHARS = 400
_GRPC_MESSAGE = "grpc-message"
_PREFIX_BYTES = 5
_MIN_WINDOW = 2**16 - 1  # the least HTTP/2 (and grpclib) allows
_MAX_WINDOW = Configuration().http2_stream_window_size  # grpclib's own, 4 MiB


def short_message(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """`text` cut to `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters cut)"


def _stream_window(max_message: int) -> int:
    """The inbound HTTP/2 window of a stream whose messages are at most `max_message` bytes."""
    return max(_MIN_WINDOW, min(max_message + _PREFIX_BYTES, _MAX_WINDOW))


def _short_encoded(value: str) -> str:
    """A percent-encoded grpc-message cut to the bound, never inside a %XX escape."""
    limit = 3 * MAX_ERROR_CHARS  # every character of a short message may take an escape of three
    if len(value) <= limit:
        return value
    cut = value[:limit]
    escape = cut.rfind("%", len(cut) - 2)
    if escape != -1:
        cut = cut[:escape]
    return f"{cut}...%20(cut)"


class BoundedStream(Stream):
    """An HTTP/2 stream that refuses messages over `max_message` bytes and sends no long grpc-message."""

    def __init__(
        self,
        connection: Connection,
        max_message: int,
        *,
        stream_id: int | None = None,
        wrapper: Wrapper | None = None,
    ) -> None:
        super().__init__(
            connection,
            connection._connection,
            connection._transport,
            stream_id=stream_id,
            wrapper=wrapper,
        )
        self.max_message = max_message

    async def recv_data(self, size: int) -> bytes:
        # grpclib reads a message as its 5-byte prefix, then `size` bytes of body: refuse before reading it.
        if size > self.max_message:
            raise GRPCError(
                Status.RESOURCE_EXHAUSTED,
                f"message of {size} bytes is over the limit of {self.max_message} bytes",
            )
        return await super().recv_data(size)

    def grow_window(self, increment: int) -> None:
        """Let the peer send `increment` more bytes on this stream (sent with the connection's next flush)."""
        self._h2_connection.increment_flow_control_window(increment, stream_id=self.id)

    async def send_headers(self, headers: Any, end_stream: bool = False) -> None:
        bounded = [
            (name, _short_encoded(value) if name == _GRPC_MESSAGE else value) for name, value in headers
        ]
        await super().send_headers(bounded, end_stream)


class _MethodLimits(AbstractHandler):
    """Hands each request received to grpclib's `handler`, first bounding its stream by its method's limit
    (and growing the stream's window to it when it is above the server's default).

    grpclib passes a request's headers (its `:path` among them) only to the handler's `accept`, before
    any message of the request is read: the one moment a stream can learn which method it carries.
    """

    def __init__(self, handler: AbstractHandler, method_limits: Mapping[str, int]) -> None:
        self.handler = handler
        self.method_limits = method_limits

    def accept(self, stream: Stream, headers: Any, release_stream: Callable[[], None]) -> None:
        if isinstance(stream, BoundedStream):
            limit = self.method_limits.get(dict(headers).get(":path", ""), stream.max_message)
            grow = _stream_window(limit) - _stream_window(stream.max_message)
            stream.max_message = limit
            if grow > 0:
                stream.grow_window(grow)
        self.handler.accept(stream, headers, release_stream)

    def cancel(self, stream: Stream) -> None:
        self.handler.cancel(stream)

    def close(self) -> None:
        self.handler.close()


class BoundedProtocol(H2Protocol):
    """grpclib's HTTP/2 protocol whose streams are `BoundedStream`s: of `method_limits[path]` bytes for a
    request received for a method listed there, of `max_message` bytes otherwise."""

    def __init__(
        self, protocol: H2Protocol, max_message: int, method_limits: Mapping[str, int] | None = None
    ) -> None:
        super().__init__(protocol.handler, protocol.config, protocol.h2_config)
        self.max_message = max_message
        self.method_limits = method_limits or {}

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)
        # The one place grpclib makes streams, for requests received (server) and sent (client).
        self.connection.create_stream = self._create_stream  # type: ignore[method-assign]
        if self.method_limits:
            self.processor.handler = _MethodLimits(self.processor.handler, self.method_limits)

    def _create_stream(self, *, stream_id: int | None = None, wrapper: Wrapper | None = None) -> Stream:
        return BoundedStream(self.connection, self.max_message, stream_id=stream_id, wrapper=wrapper)


class BoundedServer(Server):
    """A grpclib server whose connections refuse requests over their method's limit in `method_limits`,
    or over `max_message` bytes for a method not listed there (RESOURCE_EXHAUSTED). A stream's window
    starts at `max_message` bytes (from 64 KiB up to 4 MiB) and grows to its method's limit."""

    def __init__(
        self,
        handlers: list[Any],
        *,
        max_message: int = MAX_MESSAGE_BYTES,
        method_limits: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(handlers, config=Configuration(http2_stream_window_size=_stream_window(max_message)))
        self.max_message = max_message
        self.method_limits = method_limits or {}

    def _protocol_factory(self) -> H2Protocol:
        return BoundedProtocol(super()._protocol_factory(), self.max_message, self.method_limits)


class BoundedChannel(Channel):
    """A grpclib channel that refuses replies over `max_message` bytes (RESOURCE_EXHAUSTED)."""

    def __init__(self, *args: Any, max_message: int = MAX_MESSAGE_BYTES, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_message = max_message

    def _protocol_factory(self) -> H2Protocol:
        return BoundedProtocol(super()._protocol_factory(), self.max_message)
