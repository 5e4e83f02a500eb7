"""One module per paper. Each exposes ``IMPL``, a ``MethodImpl`` the registry loads lazily."""
