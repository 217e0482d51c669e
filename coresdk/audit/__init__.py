"""Audit records, hash chains, Merkle trees and signed checkpoints, shared by the sidecar, the control plane and
the offline verifier so that all three compute exactly the same bytes and hashes."""
