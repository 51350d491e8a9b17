"""gRPC service implementations."""
