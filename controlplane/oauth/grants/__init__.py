"""The token endpoint's grants (RFC 6749 §4), one module per grant, each owning its rule end to end.

A grant runs its whole rule in one store transaction (`async with store.transaction() as tx:`) on the store's
compare-and-set primitives, and raises OAuthError only after the transaction has committed what must stay
committed (a burned code, a revoked family).
"""
