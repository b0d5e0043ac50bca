"""Vision: image and document analysis through the AI gateway."""
