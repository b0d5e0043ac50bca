"""The plugin developer kit: scaffold a third-party plugin, check its import graph.

``synergyhub plugin new NAME`` calls :func:`scaffold_plugin`; the tenancy
conformance check lives with the other test helpers in
:mod:`core.testing.conformance`. See docs/plugins.md.
"""

from core.kit.imports import FORBIDDEN_MODULES, Violation, forbidden_imports
from core.kit.scaffold import Scaffolded, ScaffoldError, scaffold_plugin, validate_plugin_name

__all__ = [
    "FORBIDDEN_MODULES",
    "ScaffoldError",
    "Scaffolded",
    "Violation",
    "forbidden_imports",
    "scaffold_plugin",
    "validate_plugin_name",
]
