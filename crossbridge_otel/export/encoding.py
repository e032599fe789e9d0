"""OTLP span encoding written straight to the protobuf wire format (the encoder of :mod:`.otlp_http`'s exporter).

The SDK's encoder (``encode_spans``) builds a protobuf message object per span, attribute and value in Python and
hashes each span's ``Resource`` (a ``json.dumps`` of its attributes, per span) to group the batch. Export time on
our worker was mostly that. :func:`encode_spans` here produces the same request (the same decoded message: ids,
names, times, attributes, events, links, status, flags, resource, scope, in the same grouping and order) as
bytes directly: fields in field-number order, the resource and scope parts encoded once and cached by identity.

A span off the common path (an attribute value that is not a plain str/bool/int/float or a list/tuple of them,
an int outside int64) goes through the SDK's own encoder, so its result and its failure (the key skipped and
logged) are the SDK's; a failure anywhere else re-encodes the whole batch with the SDK's encoder.

:func:`prepare` encodes a span when it ends (our OTLP queue's span processor calls it): the queue then holds
bytes, not span objects. This module imports no exporter, HTTP or protobuf module (those load on the worker).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from struct import Struct
from typing import TYPE_CHECKING, Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanContext, SpanKind, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["EncodedSpan", "encode_spans", "prepare"]

# the SDK encoder logs a value it cannot encode here, then skips the key
_sdk_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal")

_fixed64 = Struct("<Q").pack
_fixed32 = Struct("<I").pack
_double = Struct("<d").pack
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_KIND = {  # Span.kind (field 6): the SDK's SpanKind -> OTLP's SPAN_KIND_* (one more)
    SpanKind.INTERNAL: b"\x30\x01", SpanKind.SERVER: b"\x30\x02", SpanKind.CLIENT: b"\x30\x03",
    SpanKind.PRODUCER: b"\x30\x04", SpanKind.CONSUMER: b"\x30\x05",
}
_HAS_IS_REMOTE = 0x100  # SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = 0x200  # SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_SMALL = [bytes((n,)) for n in range(128)]


def _varint(n: int) -> bytes:
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    n = len(payload)
    return tag + (_SMALL[n] if n < 128 else _varint(n)) + payload


class _Unusual(Exception):
    """A value the fast path does not encode (bytes, a dict, an int beyond int64): the SDK's encoder takes the batch."""


def _value(value: Any) -> bytes:
    """An AnyValue message's bytes, as the SDK's encoder would serialise it."""
    cls = type(value)
    if cls is str:
        return _field(b"\x0a", value.encode())
    if cls is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if cls is int and _INT64_MIN <= value <= _INT64_MAX:
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if cls is float:
        return b"\x21" + _double(value)
    if cls is tuple or cls is list:
        return _field(b"\x2a", b"".join([_field(b"\x0a", _value(item)) for item in value]))
    # The SDK's value encoder lives in a private module; rather than import it, the whole batch goes to its public
    # encode_spans (values from our wrappers are plain, so this is the rare path).
    raise _Unusual(cls.__name__)


def _attributes(tag: bytes, attributes: Any, strict: bool = False) -> list[bytes]:
    """One ``tag`` KeyValue field per attribute; a value that cannot be encoded skips its key, as the SDK does."""
    if not attributes:
        return []
    out = []
    for key, value in attributes.items():
        try:
            out.append(_field(tag, _field(b"\x0a", key.encode()) + _field(b"\x12", _value(value))))
        except _Unusual:
            raise
        except Exception as error:
            if strict:  # (on the application's thread: the worker re-encodes the span, and logs there)
                raise _Unusual(type(error).__name__) from error
            _sdk_logger.exception("Failed to encode key %s: %s", key, error)
    return out


def _flags(parent: Any) -> bytes:
    flags = _HAS_IS_REMOTE | (_IS_REMOTE if parent and parent.is_remote else 0)
    return _fixed32(flags)


# The fixed-size head of a Span message in one pack: trace_id (field 1, 16 bytes, as two big-endian halves) and
# span_id (field 2); the tags are written as big-endian 16-bit numbers so their bytes come out in wire order.
_ids = Struct(">HQQHQ").pack
_parent_id = Struct(">HQ").pack  # parent_span_id (field 4)
_times = Struct("<BQBQ").pack  # start_time_unix_nano (field 7) and end_time_unix_nano (field 8), fixed64
_LOW64 = 0xFFFFFFFFFFFFFFFF
_LOCAL_FLAGS = b"\x85\x01" + _fixed32(_HAS_IS_REMOTE)  # Span.flags (field 16) of a root or local-parent span
_REMOTE_FLAGS = b"\x85\x01" + _fixed32(_HAS_IS_REMOTE | _IS_REMOTE)
_UNSET_STATUS = b"\x7a\x00"  # an empty Status message: code UNSET, no description
_PUBLIC = object()  # "read the public property" (see _span)
_INTERNAL = SpanKind.INTERNAL


def _context_class() -> type | None:
    """SpanContext, if it is the tuple (trace_id, span_id, is_remote, trace_flags, trace_state, is_valid) its
    properties index; else None (its properties are read)."""
    state = TraceState([("k", "v")])
    probe = SpanContext(3, 5, True, TraceFlags(1), state)
    fields = (probe.trace_id, probe.span_id, probe.is_remote, probe.trace_flags, probe.trace_state, probe.is_valid)
    if isinstance(probe, tuple) and len(probe) == 6 and all(a is b for a, b in zip(probe, fields, strict=True)):
        return SpanContext
    return None


_SpanContext: Any = _context_class()  # (Any: mypy would narrow what type() is compared with)

# Encoded pieces that repeat from span to span (span names; attributes with a str, int or bool value), keyed by what
# fully determines their bytes (the value's type too: True == 1 but encodes differently). Floats are never keyed
# (-0.0 == 0.0, NaN != NaN). Bounded: cleared when full; long strings are not kept. A race between worker threads can
# only lose an entry, never store a wrong one (an entry's bytes depend on its key alone).
_CACHE_LIMIT = 4096
_CACHED_TEXT = 256
_names: dict[str, bytes] = {}
_key_values: dict[tuple[str, type, Any], bytes] = {}


def _name(name: str) -> bytes:
    encoded = _names.get(name)
    if encoded is None:
        encoded = _field(b"\x2a", name.encode())
        if len(name) <= _CACHED_TEXT:
            if len(_names) >= _CACHE_LIMIT:
                _names.clear()
            _names[name] = encoded
    return encoded


_float_heads: dict[str, bytes] = {}


def _float_head(key: str) -> bytes:
    """A Span.attributes KeyValue of a double up to its 8 value bytes: tag, length, the key, the value's tags."""
    payload = _field(b"\x0a", key.encode()) + b"\x12\x09\x21"
    head = b"\x4a" + _varint(len(payload) + 8) + payload
    if len(key) <= _CACHED_TEXT:
        if len(_float_heads) >= _CACHE_LIMIT:
            _float_heads.clear()
        _float_heads[key] = head
    return head


def _span_attributes(attributes: Any, strict: bool) -> list[bytes]:
    """The span's attributes as Span.attributes (field 9) fields; :func:`_attributes` with a cache in front."""
    out = []
    cache = _key_values
    # a dict (a BoundedAttributes' own, or a copy of another mapping) iterates in C; items() on BoundedAttributes
    # would call back into Python for every key
    items = attributes if type(attributes) is dict else attributes.copy()
    for key, value in items.items():
        cls = type(value)
        if cls is str or cls is int or cls is bool:
            cache_key = (key, cls, value)
            encoded = cache.get(cache_key)
            if encoded is None:
                found = _attributes(b"\x4a", {key: value}, strict)  # (_Unusual beyond int64; a bad key logged)
                if not found:
                    continue
                encoded = found[0]
                if cls is not str or len(value) <= _CACHED_TEXT:
                    if len(cache) >= _CACHE_LIMIT:
                        cache.clear()
                    cache[cache_key] = encoded
            out.append(encoded)
        elif cls is float and type(key) is str and key.isascii():
            # a KeyValue of a double: key, then value (AnyValue with double_value, field 4: 9 bytes); the bytes
            # before the value are kept by key
            head = _float_heads.get(key)
            if head is None:
                head = _float_head(key)
            out.append(head + _double(value))
        else:
            out += _attributes(b"\x4a", {key: value}, strict)
    return out


# Classes whose spans are read from their fields (see _span): the SDK's ReadableSpan and subclasses that override
# none of its read properties; by class, decided once (bounded: cleared when full).
_READ_PROPERTIES = ("context", "parent", "name", "kind", "start_time", "end_time", "status", "resource",
                    "instrumentation_scope", "attributes", "dropped_attributes", "events", "dropped_events", "links",
                    "dropped_links")
_plain_classes: dict[type, bool] = {}


def _is_plain(cls: type) -> bool:
    """Whether ``cls``'s read properties are the SDK ReadableSpan's own (each returns one field as it is)."""
    plain = _plain_classes.get(cls)
    if plain is None:
        from opentelemetry.sdk.trace import ReadableSpan as SdkReadableSpan

        plain = issubclass(cls, SdkReadableSpan) and all(
            getattr(cls, name, None) is getattr(SdkReadableSpan, name) for name in _READ_PROPERTIES)
        if len(_plain_classes) >= 64:
            _plain_classes.clear()
        _plain_classes[cls] = plain
    return plain


def _span(span: ReadableSpan, strict: bool = False) -> bytes:
    # A span of the SDK's own classes is read from the fields its properties return: each property is a Python call
    # (~0.1 us warm, more on the worker, which reads a batch of spans that ended up to a second ago), a dozen a span.
    context: Any
    parent: Any
    if _plain_classes.get(type(span)) or _is_plain(type(span)):
        fields: Any = span
        context, parent, name, kind = fields._context, fields._parent, fields._name, fields._kind
        start, end, status = fields._start_time, fields._end_time, fields._status
        attributes, events, links = fields._attributes, fields._events, fields._links
    else:
        context, parent, name, kind = span.context, span.parent, span.name, span.kind
        start, end, status = span.start_time, span.end_time, span.status
        attributes = events = links = _PUBLIC
    if type(context) is _SpanContext:  # (a tuple: its fields unpacked in C, not three property calls)
        trace_id, span_id, _, _, trace_state, _ = context
    else:
        trace_id, span_id, trace_state = context.trace_id, context.span_id, context.trace_state
    out = [_ids(0x0A10, trace_id >> 64, trace_id & _LOW64, 0x1208, span_id)]
    if getattr(trace_state, "_dict", trace_state):  # (its dict when it has one: no __len__ call)
        text = ",".join([f"{key}={value}" for key, value in trace_state.items()])
        if text:
            out.append(_field(b"\x1a", text.encode()))
    remote = False
    if parent:
        if type(parent) is _SpanContext:
            remote = parent[2]  # (is_remote)
            out.append(_parent_id(0x2208, parent[1]))  # (span_id)
        else:
            remote = parent.is_remote
            out.append(_parent_id(0x2208, parent.span_id))
    if name:
        out.append(_name(name))
    out.append(b"\x30\x01" if kind is _INTERNAL else _KIND[kind])
    if start and end:
        out.append(_times(0x39, start, 0x41, end))
    else:
        if start:
            out += (b"\x39", _fixed64(start))
        if end:
            out += (b"\x41", _fixed64(end))
    # The SDK's ReadableSpan keeps its attributes, events and links in _attributes, _events and _links; its public
    # properties copy them (a tuple of the events, of the links: ~0.6 us each per span, most spans having none).
    # Read them where they are, only to see what is there; anything else goes through the public properties.
    if type(attributes) is BoundedAttributes:
        dropped = attributes.dropped  # (what the dropped_attributes property reads)
        # what its copy() copies (the span has ended: nothing changes it any more)
        attributes = getattr(attributes, "_dict", None) or attributes.copy()
    else:
        attributes, dropped = span.attributes, span.dropped_attributes
    if attributes:
        out += _span_attributes(attributes, strict)
    if dropped:
        out += (b"\x50", _varint(dropped))
    if type(events) is BoundedList:  # (its deque when it has one: no __len__ call)
        dropped_events = events.dropped
        events = span.events if getattr(events, "_dq", events) else ()
    else:
        dropped_events = None
        events = span.events if events is _PUBLIC or events else ()
    for event in events:
        parts = [b"\x09", _fixed64(event.timestamp)] if event.timestamp else []
        if event.name:
            parts.append(_field(b"\x12", event.name.encode()))
        parts += _attributes(b"\x1a", event.attributes, strict)
        if event.dropped_attributes:
            parts += (b"\x20", _varint(event.dropped_attributes))
        out.append(_field(b"\x5a", b"".join(parts)))
    if dropped_events is None:
        dropped_events = span.dropped_events
    if dropped_events:
        out += (b"\x60", _varint(dropped_events))
    if type(links) is BoundedList:
        dropped_links = links.dropped
        links = span.links if getattr(links, "_dq", links) else ()
    else:
        dropped_links = None
        links = span.links if links is _PUBLIC or links else ()
    for link in links:
        parts = [b"\x0a\x10", link.context.trace_id.to_bytes(16, "big"),
                 b"\x12\x08", link.context.span_id.to_bytes(8, "big")]
        parts += _attributes(b"\x22", link.attributes, strict)
        if link.dropped_attributes:
            parts += (b"\x28", _varint(link.dropped_attributes))
        parts += (b"\x35", _flags(link.context))
        out.append(_field(b"\x6a", b"".join(parts)))
    if dropped_links is None:
        dropped_links = span.dropped_links
    if dropped_links:
        out += (b"\x70", _varint(dropped_links))
    if status is not None:
        out.append(_status(status))
    out.append(_REMOTE_FLAGS if remote else _LOCAL_FLAGS)
    return _field(b"\x12", b"".join(out))  # as ScopeSpans.spans (field 2)


_last_status: tuple[Any, bytes] = (None, b"")


def _status(status: Any) -> bytes:
    """Span.status (field 15). A Status cannot change; most spans share the SDK's default one (kept here: the last
    encoded, by identity)."""
    global _last_status
    last = _last_status
    if status is last[0]:
        return last[1]
    description = status.description
    code = status.status_code
    if not description and code is StatusCode.UNSET:
        encoded = _UNSET_STATUS
    else:
        parts = []
        if description:
            parts.append(_field(b"\x12", description.encode()))
        if code.value:
            parts += (b"\x18", _varint(code.value))
        encoded = _field(b"\x7a", b"".join(parts))
    _last_status = (status, encoded)
    return encoded


class _PartCache:
    """Encoded resources and scopes by object identity (the object kept alongside, so an id is never reused)."""

    LIMIT = 256

    def __init__(self) -> None:
        self._parts: dict[int, tuple[Any, bytes]] = {}

    def get(self, obj: Any, encode: Any) -> bytes:
        hit = self._parts.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        if len(self._parts) >= self.LIMIT:
            self._parts.clear()
        encoded: bytes = encode(obj)
        self._parts[id(obj)] = (obj, encoded)
        return encoded


def _resource(resource: Any) -> bytes:
    return _field(b"\x0a", b"".join(_attributes(b"\x0a", resource.attributes)))  # ResourceSpans.resource


def _scope(scope: Any) -> bytes:
    parts = []
    if scope is not None:
        if scope.name:
            parts.append(_field(b"\x0a", scope.name.encode()))
        if scope.version:
            parts.append(_field(b"\x12", scope.version.encode()))
        parts += _attributes(b"\x1a", scope.attributes)
    return _field(b"\x0a", b"".join(parts))  # ScopeSpans.scope


_cache = _PartCache()


def _encode(spans: Sequence[Any]) -> bytes:
    # Group as the SDK does (equal resources together, then equal scopes, in first-seen order), but hash and
    # compare each distinct resource/scope object once per batch, not once per span.
    groups: dict[Any, dict[Any, list[bytes]]] = {}
    by_identity: dict[tuple[int, int], list[bytes]] = {}
    last: tuple[Any, Any] = (None, None)
    encoded: list[bytes] = []
    for span in spans:
        if type(span) is EncodedSpan:
            resource, scope, data = span._resource, span.instrumentation_scope, span.data
        elif _plain_classes.get(type(span)):
            resource, scope, data = span._resource, span._instrumentation_scope or None, None
        else:
            resource, scope, data = span.resource, span.instrumentation_scope or None, None
        if resource is not last[0] or scope is not last[1] or not by_identity:  # (a batch is mostly one run)
            key = (id(resource), id(scope))
            found = by_identity.get(key)
            if found is None:
                found = groups.setdefault(resource, {}).setdefault(scope, [])
                by_identity[key] = found
            encoded, last = found, (resource, scope)
        if data is None:
            try:
                data = _span(span)
            except _Unusual:
                data = _sdk_span(span)
        encoded.append(data)
    request = []
    for resource, scopes in groups.items():
        parts = [_cache.get(resource, _resource)]
        for scope, encoded in scopes.items():
            scope_parts = [_cache.get(scope, _scope), *encoded]
            if scope is not None and scope.schema_url:
                scope_parts.append(_field(b"\x1a", scope.schema_url.encode()))
            parts.append(_field(b"\x12", b"".join(scope_parts)))
        if resource.schema_url:
            parts.append(_field(b"\x1a", resource.schema_url.encode()))
        request.append(_field(b"\x0a", b"".join(parts)))
    return b"".join(request)


def _sdk_span(span: ReadableSpan) -> bytes:
    """The span's ScopeSpans.spans field from the SDK's encoder, for a value the fast path does not encode (its result
    and its failure, the key skipped and logged, are the SDK's)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans

    message = sdk_encode_spans([span]).resource_spans[0].scope_spans[0].spans[0]
    return _field(b"\x12", bytes(message.SerializePartialToString()))


def encode_spans(spans: Sequence[Any]) -> bytes:
    """A serialised ``ExportTraceServiceRequest`` for ``spans`` (ReadableSpans, and :class:`EncodedSpan` items from
    :func:`prepare`), decoding equal to the SDK's ``encode_spans`` for the same spans."""
    try:
        return _encode(spans)
    except Exception:  # whatever the fast path could not do, the SDK's encoder does (or fails at) as it would
        if any(type(span) is EncodedSpan for span in spans):
            raise
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans

        return bytes(sdk_encode_spans(spans).SerializePartialToString())


class EncodedSpan:
    """A finished span as our OTLP queue keeps it: its Span message, already encoded, and the resource and scope it
    is grouped under. One small object instead of the span's two dozen (they are freed when the span ends, so the
    garbage collector never walks a full queue of them); ``_resource`` is re-labelled after fork like a span's."""

    __slots__ = ("_resource", "data", "instrumentation_scope")

    def __init__(self, resource: Any, scope: Any, data: bytes) -> None:
        self._resource = resource
        self.instrumentation_scope = scope
        self.data = data

    @property
    def resource(self) -> Any:
        return self._resource


def prepare(span: ReadableSpan) -> Any:
    """``span`` encoded as an :class:`EncodedSpan` (on the application's thread, in ``on_end``: ~4 us, while the
    span's objects are still in the CPU's caches), or ``span`` itself when the fast path would not encode it as is
    (an unusual value, a key that fails): the worker then encodes it whole, logging what the SDK would log."""
    try:
        return EncodedSpan(span.resource, span.instrumentation_scope or None, _span(span, strict=True))
    except Exception:
        return span
