from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MaskRequest(_message.Message):
    __slots__ = ("text", "json", "policy")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    text: str
    json: str
    policy: str
    def __init__(self, text: _Optional[str] = ..., json: _Optional[str] = ..., policy: _Optional[str] = ...) -> None: ...

class Finding(_message.Message):
    __slots__ = ("entity_type", "start", "end", "confidence", "json_path", "operator")
    ENTITY_TYPE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    JSON_PATH_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    entity_type: str
    start: int
    end: int
    confidence: float
    json_path: str
    operator: str
    def __init__(self, entity_type: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., confidence: _Optional[float] = ..., json_path: _Optional[str] = ..., operator: _Optional[str] = ...) -> None: ...

class MaskResponse(_message.Message):
    __slots__ = ("text", "json", "findings")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    text: str
    json: str
    findings: _containers.RepeatedCompositeFieldContainer[Finding]
    def __init__(self, text: _Optional[str] = ..., json: _Optional[str] = ..., findings: _Optional[_Iterable[_Union[Finding, _Mapping]]] = ...) -> None: ...
