"""A grpclib channel that reads the errors of Golem's own SDK servers with their real status.

Golem's SDK (task-api 0.24 on grpclib 0.2.4) answers a failed call *trailers-only*: a single HEADERS frame
holding `:status 200`, `grpc-status` and `grpc-message`, but no `content-type`. grpclib 0.4.9's client
checks the content type before it looks for `grpc-status`, so it turns every such error into UNKNOWN
"Missing content-type header" and loses the app's own status and message.

`AppChannel` keeps that check for every reply that carries data, and lets a trailers-only reply (one with
`grpc-status` in its headers, which by the gRPC spec ends the call without a message) through without a
content type, so grpclib's own trailers-only handling raises the status and message the server sent.
"""

from __future__ import annotations

from typing import Any, cast

from grpclib.client import Stream
from grpclib.const import Cardinality
from grpclib.metadata import Deadline, _Metadata, _MetadataLike
from multidict import MultiDict

from apps.sdk.wire_limits import BoundedChannel


class _TrailersOnlyTolerantStream(Stream[Any, Any]):
    """A client stream that accepts a trailers-only reply without a content-type header."""

    def _raise_for_content_type(self, headers_map: dict[str, str]) -> None:
        if "content-type" not in headers_map and "grpc-status" in headers_map:
            return  # trailers-only: no message follows, so there is no payload whose type matters
        super()._raise_for_content_type(headers_map)


class AppChannel(BoundedChannel):
    """A `BoundedChannel` whose calls read old grpclib's trailers-only errors correctly."""

    def request(
        self,
        name: str,
        cardinality: Cardinality,
        request_type: type[Any],
        reply_type: type[Any],
        *,
        timeout: float | None = None,
        deadline: Deadline | None = None,
        metadata: _MetadataLike | None = None,
    ) -> Stream[Any, Any]:
        if timeout is not None:
            by_timeout = Deadline.from_timeout(timeout)
            deadline = by_timeout if deadline is None else min(by_timeout, deadline)
        return _TrailersOnlyTolerantStream(
            self,
            name,
            cast(_Metadata, MultiDict(metadata or ())),
            cardinality,
            request_type,
            reply_type,
            codec=self._codec,
            status_details_codec=self._status_details_codec,
            dispatch=self.__dispatch__,
            deadline=deadline,
        )
