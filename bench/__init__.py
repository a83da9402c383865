"""careloop's benchmark against a bare Starlette + asyncpg baseline: ``make bench`` (see bench/README.md)."""
