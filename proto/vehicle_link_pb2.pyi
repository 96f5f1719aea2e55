from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VehicleMessage(_message.Message):
    __slots__ = ("hello", "event", "heartbeat")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    event: CommandEvent
    heartbeat: Heartbeat
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., event: _Optional[_Union[CommandEvent, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class HubMessage(_message.Message):
    __slots__ = ("welcome", "command", "cancel", "heartbeat")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    command: CommandRequest
    cancel: CancelCommand
    heartbeat: Heartbeat
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., command: _Optional[_Union[CommandRequest, _Mapping]] = ..., cancel: _Optional[_Union[CancelCommand, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("vin", "agent_version", "capabilities")
    VIN_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    vin: str
    agent_version: str
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, vin: _Optional[str] = ..., agent_version: _Optional[str] = ..., capabilities: _Optional[_Iterable[str]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("session_id", "heartbeat_interval_ms")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    heartbeat_interval_ms: int
    def __init__(self, session_id: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("sent_at_ms",)
    SENT_AT_MS_FIELD_NUMBER: _ClassVar[int]
    sent_at_ms: int
    def __init__(self, sent_at_ms: _Optional[int] = ...) -> None: ...

class SovdRequest(_message.Message):
    __slots__ = ("method", "path", "query", "body")
    class QueryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    method: str
    path: str
    query: _containers.ScalarMap[str, str]
    body: bytes
    def __init__(self, method: _Optional[str] = ..., path: _Optional[str] = ..., query: _Optional[_Mapping[str, str]] = ..., body: _Optional[bytes] = ...) -> None: ...

class CommandRequest(_message.Message):
    __slots__ = ("command_id", "sovd", "deadline_ms")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    SOVD_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    sovd: SovdRequest
    deadline_ms: int
    def __init__(self, command_id: _Optional[str] = ..., sovd: _Optional[_Union[SovdRequest, _Mapping]] = ..., deadline_ms: _Optional[int] = ...) -> None: ...

class CancelCommand(_message.Message):
    __slots__ = ("command_id",)
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    def __init__(self, command_id: _Optional[str] = ...) -> None: ...

class CommandEvent(_message.Message):
    __slots__ = ("command_id", "seq", "kind", "status", "body", "final")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[CommandEvent.Kind]
        ACCEPTED: _ClassVar[CommandEvent.Kind]
        PROGRESS: _ClassVar[CommandEvent.Kind]
        RESULT: _ClassVar[CommandEvent.Kind]
        ERROR: _ClassVar[CommandEvent.Kind]
    KIND_UNSPECIFIED: CommandEvent.Kind
    ACCEPTED: CommandEvent.Kind
    PROGRESS: CommandEvent.Kind
    RESULT: CommandEvent.Kind
    ERROR: CommandEvent.Kind
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    seq: int
    kind: CommandEvent.Kind
    status: int
    body: bytes
    final: bool
    def __init__(self, command_id: _Optional[str] = ..., seq: _Optional[int] = ..., kind: _Optional[_Union[CommandEvent.Kind, str]] = ..., status: _Optional[int] = ..., body: _Optional[bytes] = ..., final: _Optional[bool] = ...) -> None: ...
