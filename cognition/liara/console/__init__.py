"""The operator console: a page in the browser on the HTTP service's own API and tokens.

``static/`` holds all of it (no build step, nothing fetched from elsewhere); ``liara serve``
serves it at ``/`` (see ``cognition.liara.service.routes.console``).
"""

from pathlib import Path

ASSETS = Path(__file__).parent / "static"
