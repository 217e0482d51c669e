"""The chain-id grammar, the checkpoint signer that refuses origins it could not have built, and the offline
verifier that refuses notes with injected lines — in process."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given
from nacl.signing import SigningKey

from coresdk.audit import chain_id as chain_ids
from coresdk.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    audit_origin,
    key_id,
    open_checkpoint,
    parse_origin,
    sign_checkpoint,
    verifier_key,
)
from coresdk.audit.merkle import record_tree_leaves, root_from_leaf_hashes
from coresdk.audit.offline import verify_export
from coresdk.audit.record import GENESIS_HASH, seal, validate_fields
from coresdk.cli import main as cli_main
from coresdk.config.gateway import load_gateway_config
from coresdk.config.sidecar import load_sidecar_config
from coresdk.errors import ConfigError
from tests.unit.chain_id_cases import hostile_ids, valid_ids


@given(valid_ids)
def test_every_name_of_the_grammar_is_a_chain_id(value: str) -> None:
    assert chain_ids.is_valid(value)
    assert chain_ids.check(value) == value


@given(hostile_ids)
def test_everything_else_is_refused_with_a_typed_error(value: str) -> None:
    assert not chain_ids.is_valid(value)
    with pytest.raises(chain_ids.InvalidChainId) as info:
        chain_ids.check(value)
    assert "must be 1-128 characters" in str(info.value)
    assert "\n" not in str(info.value)  # the value is quoted with repr: a newline cannot forge a log line
    with pytest.raises(chain_ids.InvalidChainId):
        seal(validate_fields({"actor": "a", "action": "x.y", "outcome": "allow"}), value, 1, GENESIS_HASH)


@pytest.mark.parametrize("value", [None, 7, b"abc", ["a"]])
def test_non_strings_are_refused(value: object) -> None:
    assert not chain_ids.is_valid(value)


@given(hostile_ids)
def test_the_services_refuse_a_hostile_chain_id_at_start_naming_the_variable(value: str) -> None:
    if value.strip() == "" or chain_ids.is_valid(value.strip()):  # settings are trimmed; blank means the default
        return
    with pytest.raises(ConfigError) as info:
        load_sidecar_config({"CORESDK_ENV": "development", "CORESDK_AUDIT_CHAIN": value})
    assert info.value.variable == "CORESDK_AUDIT_CHAIN"
    with pytest.raises(ConfigError) as info:
        load_gateway_config(
            {
                "CORESDK_ENV": "development",
                "CORESDK_UPSTREAM_URL": "http://127.0.0.1:9",
                "CORESDK_GATEWAY_AUDIT_CHAIN": value,
            }
        )
    assert info.value.variable == "CORESDK_GATEWAY_AUDIT_CHAIN"


# --- the checkpoint signer ------------------------------------------------------------------------------------------

KEY = SigningKey(b"\x05" * 32)
NAME = "cp.example"


@given(valid_ids)
def test_the_signer_signs_every_origin_it_builds(chain: str) -> None:
    for kind in ("", "retention"):
        cp = Checkpoint(audit_origin(NAME, chain, kind), 3, b"\x01" * 32)
        assert parse_origin(cp.origin, NAME) == (chain, kind)
        assert open_checkpoint(sign_checkpoint(cp, NAME, KEY), NAME, bytes(KEY.verify_key)) == cp


@given(hostile_ids)
def test_the_signer_refuses_an_origin_it_could_not_have_built(chain: str) -> None:
    with pytest.raises(chain_ids.InvalidChainId):
        audit_origin(NAME, chain)
    with pytest.raises(CheckpointError):
        sign_checkpoint(Checkpoint(f"{NAME}/audit/{chain}", 1, b"\x02" * 32), NAME, KEY)


@pytest.mark.parametrize(
    "origin",
    [
        "other.example/audit/chain-a",
        f"{NAME}/audit/chain-a/",
        f"{NAME}/audit/chain-a/other",
        f"{NAME}/audit/chain-a/retention/x",
        f"{NAME}/audits/chain-a",
        f"{NAME}/audit/",
    ],
)
def test_the_signer_refuses_foreign_shapes(origin: str) -> None:
    with pytest.raises(CheckpointError):
        sign_checkpoint(Checkpoint(origin, 1, b"\x02" * 32), NAME, KEY)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\nb"])
def test_the_signer_refuses_a_key_name_that_would_break_the_note(name: str) -> None:
    with pytest.raises(CheckpointError):
        sign_checkpoint(Checkpoint(f"{name}/audit/chain-a", 1, b"\x02" * 32), name, KEY)


# --- the note-injection attack, end to end in process ---------------------------------------------------------------


def _records(chain: str, n: int) -> list[dict[str, object]]:
    out, previous = [], GENESIS_HASH
    for seq in range(1, n + 1):
        s = seal(validate_fields({"actor": "forger", "action": "x.y", "outcome": "allow"}), chain, seq, previous)
        out.append({"chain_id": chain, "seq": seq, "record_hash": s.record_hash, "canonical": s.canonical.decode()})
        previous = s.record_hash
    return out


def _legacy_note(origin: str, tree_size: int, root: bytes) -> str:
    """What the signer produced before chain ids had a grammar: the origin pasted in, newlines and all."""
    body = f"{origin}\n{tree_size}\n{base64.b64encode(root).decode()}\n".encode()
    sig = base64.b64encode(key_id(NAME, bytes(KEY.verify_key)) + KEY.sign(body).signature).decode()
    return body.decode() + f"\n\u2014 {NAME} {sig}\n"


def test_a_note_with_injected_lines_is_refused_by_coresdk_audit_verify(tmp_path: Path) -> None:
    fake = _records("victim", 1)  # a history of the victim's chain that never happened
    fake_root = root_from_leaf_hashes(record_tree_leaves([bytes.fromhex(str(r["record_hash"])) for r in fake]))
    injected = f"victim\n1\n{base64.b64encode(fake_root).decode()}"
    # today the signer refuses to build that note at all
    with pytest.raises(CheckpointError):
        sign_checkpoint(Checkpoint(f"{NAME}/audit/{injected}", 5, b"\x03" * 32), NAME, KEY)
    # and a note an old signer made is not a checkpoint of "victim" (its first three lines say it is)
    note = _legacy_note(f"{NAME}/audit/{injected}", 5, b"\x03" * 32)
    assert note.split("\n")[:3] == [f"{NAME}/audit/victim", "1", base64.b64encode(fake_root).decode()]
    (tmp_path / "victim.jsonl").write_text("".join(json.dumps(r) + "\n" for r in fake))
    (tmp_path / "victim.checkpoint").write_text(note)
    pub = verifier_key(NAME, bytes(KEY.verify_key))
    report = verify_export(tmp_path / "victim.jsonl", tmp_path / "victim.checkpoint", pub)
    assert report["valid"] is False
    assert report["reason"] == "checkpoint_invalid"
    argv = ["audit", "verify", "--export", str(tmp_path / "victim.jsonl"), "--checkpoint"]
    assert cli_main([*argv, str(tmp_path / "victim.checkpoint"), "--pubkey", pub]) == 1
    # the honest note for the same history still verifies
    (tmp_path / "honest.checkpoint").write_text(
        sign_checkpoint(Checkpoint(audit_origin(NAME, "victim"), 1, fake_root), NAME, KEY)
    )
    assert verify_export(tmp_path / "victim.jsonl", tmp_path / "honest.checkpoint", pub)["valid"] is True


def test_offline_verify_refuses_exports_and_seals_that_name_no_chain(tmp_path: Path) -> None:
    records = _records("chain-a", 2)
    root = root_from_leaf_hashes(record_tree_leaves([bytes.fromhex(str(r["record_hash"])) for r in records]))
    pub = verifier_key(NAME, bytes(KEY.verify_key))
    export = tmp_path / "chain-a.jsonl"
    export.write_text("".join(json.dumps({**r, "chain_id": "chain-a\n"}) + "\n" for r in records))
    (tmp_path / "cp").write_text(sign_checkpoint(Checkpoint(audit_origin(NAME, "chain-a"), 2, root), NAME, KEY))
    assert verify_export(export, tmp_path / "cp", pub)["reason"] == "malformed_export"
    # a retention seal is not a checkpoint of the chain
    export.write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "seal").write_text(
        sign_checkpoint(Checkpoint(audit_origin(NAME, "chain-a", "retention"), 2, root), NAME, KEY)
    )
    assert verify_export(export, tmp_path / "seal", pub)["reason"] == "checkpoint_invalid"
    assert verify_export(export, tmp_path / "cp", pub)["valid"] is True
