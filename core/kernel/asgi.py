"""ASGI entry point for Hypercorn workers: ``core.kernel.asgi:app``."""

from core.kernel.app import create_asgi_app
from core.kernel.settings import load_settings

app = create_asgi_app(load_settings())
