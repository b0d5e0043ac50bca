"""pluggy markers for the ``synergyhub`` project."""

import pluggy

PROJECT_NAME = "synergyhub"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
