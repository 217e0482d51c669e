"""Encryption at rest: a versioned, self-describing ciphertext format and field-level helpers."""
