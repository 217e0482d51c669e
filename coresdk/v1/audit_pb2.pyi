import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditRecord(_message.Message):
    __slots__ = ("id", "chain_id", "timestamp", "actor", "action", "resource", "outcome", "tenant_id", "ip", "session_id", "reason", "metadata_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    chain_id: str
    timestamp: _timestamp_pb2.Timestamp
    actor: str
    action: str
    resource: str
    outcome: str
    tenant_id: str
    ip: str
    session_id: str
    reason: str
    metadata_json: str
    def __init__(self, id: _Optional[str] = ..., chain_id: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., resource: _Optional[str] = ..., outcome: _Optional[str] = ..., tenant_id: _Optional[str] = ..., ip: _Optional[str] = ..., session_id: _Optional[str] = ..., reason: _Optional[str] = ..., metadata_json: _Optional[str] = ...) -> None: ...

class AppendRequest(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: AuditRecord
    def __init__(self, record: _Optional[_Union[AuditRecord, _Mapping]] = ...) -> None: ...

class AppendResponse(_message.Message):
    __slots__ = ("id", "chain_id", "seq", "record_hash", "previous_hash")
    ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    RECORD_HASH_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    id: str
    chain_id: str
    seq: int
    record_hash: str
    previous_hash: str
    def __init__(self, id: _Optional[str] = ..., chain_id: _Optional[str] = ..., seq: _Optional[int] = ..., record_hash: _Optional[str] = ..., previous_hash: _Optional[str] = ...) -> None: ...

class AppendBatchRequest(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[AuditRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[AuditRecord, _Mapping]]] = ...) -> None: ...

class AppendBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[AppendResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[AppendResponse, _Mapping]]] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ("chain_id", "full")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    full: bool
    def __init__(self, chain_id: _Optional[str] = ..., full: _Optional[bool] = ...) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("chain_valid", "records_checked", "first_bad_chain_id", "first_bad_seq", "failure", "head_hash")
    CHAIN_VALID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAD_CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    chain_valid: bool
    records_checked: int
    first_bad_chain_id: str
    first_bad_seq: int
    failure: str
    head_hash: str
    def __init__(self, chain_valid: _Optional[bool] = ..., records_checked: _Optional[int] = ..., first_bad_chain_id: _Optional[str] = ..., first_bad_seq: _Optional[int] = ..., failure: _Optional[str] = ..., head_hash: _Optional[str] = ...) -> None: ...
