"""`python -m server`: run the gRPC server with settings from the environment."""

import asyncio

from reelscribe import logs
from reelscribe.config import get_settings
from server.app import serve

if __name__ == "__main__":
    logs.configure()
    asyncio.run(serve(get_settings()))
