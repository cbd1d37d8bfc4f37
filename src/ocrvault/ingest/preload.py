"""What the decode forkserver loads once, for every child it forks (ingest/sandbox.py).

The decoders, and every Pillow format plugin: Pillow imports its plugins on a process's
first image (about 30 ms), which in a fresh child falls on the first requests after
start. Loaded here they cost each child nothing but about 2 MB. Which formats a file
may be is still decided by the caller (``formats=`` in ingest/inspect.py), not by what
is loaded.
"""

from PIL import Image

import ocrvault.ingest.decode  # noqa: F401  # the decoders every child runs

Image.init()
