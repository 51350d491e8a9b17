"""Load: 100 concurrent users against the real stack, vs a bare grpc.aio server."""
