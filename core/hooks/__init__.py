"""The plugin contract: markers and the manifest type plugins import.

Plugins write ``from core.hooks import hookimpl`` and nothing else from the
kernel's plugin machinery; the specs live in :mod:`core.hooks.hookspecs`.
"""

from core.hooks.manifest import DisablePolicy, Migration, PluginManifest, ThemeAssets
from core.hooks.markers import PROJECT_NAME, hookimpl, hookspec

__all__ = [
    "PROJECT_NAME",
    "DisablePolicy",
    "Migration",
    "PluginManifest",
    "ThemeAssets",
    "hookimpl",
    "hookspec",
]
