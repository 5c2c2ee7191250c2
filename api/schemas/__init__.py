"""Request and response bodies, one module per resource (variants carry a one-line comment)."""
