"""`python -m server`: run the gRPC server (the same as `reelscribe server`)."""

from server.process import main

if __name__ == "__main__":
    main()
