"""The Reelscribe gRPC server (grpc.aio): services, interceptors and the app."""
