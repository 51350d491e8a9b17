"""Reelscribe: long recordings in, transcripts and a searchable library out.

This package is the library shared by the two deployables, the gRPC server
(`server/`) and the Dramatiq workers (`workers/`). Neither deployable imports
the other; both import from here.
"""

__version__ = "0.1.0"
