"""Composition root: the Starlette app, the GraphQL view and its context, the CLI."""
