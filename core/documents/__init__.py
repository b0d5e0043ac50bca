"""Documents: the kernel's first scoped resource (files arrive with storage)."""
