"""RFC 6962 tree heads and proofs for every tree size up to 64, and the signed-note checkpoint format."""

from __future__ import annotations

import hashlib

import pytest
from nacl.signing import SigningKey

from coresdk.audit import merkle
from coresdk.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    open_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    verifier_key,
)

# The eight inputs of the Certificate Transparency reference tests and their published tree heads (RFC 6962 §2.1).
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def reference_mth(data: list[bytes]) -> bytes:
    """The RFC's recursive definition, written independently of the production code."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1 << (len(data) - 1).bit_length() - 1
    return hashlib.sha256(b"\x01" + reference_mth(data[:k]) + reference_mth(data[k:])).digest()


@pytest.mark.parametrize("n", range(1, 9))
def test_ct_reference_roots(n: int) -> None:
    assert merkle.root(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]


def test_empty_tree() -> None:
    assert merkle.root([]) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", range(1, 65))
def test_roots_and_proofs_for_every_size(n: int) -> None:
    data = [hashlib.sha256(str(i).encode()).digest() for i in range(n)]
    leaves = merkle.record_tree_leaves(data)
    root = merkle.root_from_leaf_hashes(leaves)
    assert root == reference_mth(data)
    for i in range(n):
        proof = merkle.inclusion_proof(leaves, i)
        assert merkle.verify_inclusion(leaves[i], i, n, proof, root)
        assert not merkle.verify_inclusion(leaves[i], i, n, proof, hashlib.sha256(b"x").digest())
        if proof:
            assert not merkle.verify_inclusion(leaves[(i + 1) % n], i, n, proof, root) or n == 1
    for m in range(1, n + 1):
        first_root = reference_mth(data[:m])
        proof = merkle.consistency_proof(leaves, m)
        assert merkle.verify_consistency(m, n, proof, first_root, root)
        if m < n:
            assert not merkle.verify_consistency(m, n, proof, hashlib.sha256(b"forged").digest(), root)


def test_checkpoint_sign_and_verify() -> None:
    key = SigningKey(b"\x01" * 32)
    pub = bytes(key.verify_key)
    cp = Checkpoint("cp.example/audit/chain-a", 42, b"\x07" * 32)
    note = sign_checkpoint(cp, "cp.example", key)
    body, _, sig = note.partition("\n\n")
    assert body.split("\n") == ["cp.example/audit/chain-a", "42", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="]
    assert sig.startswith("\u2014 cp.example ")
    assert open_checkpoint(note, "cp.example", pub) == cp
    name, parsed = parse_verifier_key(verifier_key("cp.example", pub))
    assert (name, parsed) == ("cp.example", pub)
    with pytest.raises(CheckpointError):
        open_checkpoint(note.replace("\n42\n", "\n43\n"), "cp.example", pub)
    with pytest.raises(CheckpointError):
        open_checkpoint(note, "cp.example", bytes(SigningKey(b"\x02" * 32).verify_key))
    with pytest.raises(CheckpointError):
        parse_verifier_key(verifier_key("cp.example", pub).replace("cp.example+", "other+"))
