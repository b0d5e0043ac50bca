"""The kernel's own features, registered as ``kernel.<name>`` plugins through the same hooks.

One line per feature: the module holds its ``@hookimpl`` functions
(``register_routes``, ``register_models``, ``startup`` …). Kernel plugins are
always enabled; feature plugins come from the ``synergyhub.plugins`` entry points.
"""

from __future__ import annotations

import importlib

KERNEL_PLUGIN_MODULES: dict[str, str] = {
    "tenancy": "core.tenancy.plugin",
    "realtime": "core.realtime.plugin",
    "whitelabel": "core.whitelabel.plugin",
    "storage": "core.storage.plugin",
    "ai": "core.ai.plugin",
    "broker": "core.broker.plugin",
}


def kernel_plugins() -> list[tuple[str, object]]:
    return [(name, importlib.import_module(path)) for name, path in KERNEL_PLUGIN_MODULES.items()]
