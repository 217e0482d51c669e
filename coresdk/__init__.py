"""CoreSDK shared core: configuration, typed errors, JOSE primitives and the gRPC contract (coresdk.v1)."""

__version__ = "0.1.0"
