"""careloop's extensions runner (``schema.extensions.ExtensionsRunner``) runs every hook as Strawberry's does.

Extensions with each kind of hook (a generator, an async generator, a plain function, a coroutine, none) record
what runs when; the four stages of an operation are run by both runners, nested as Strawberry nests them, once
quietly and once with an error raised inside. The records and the error that comes out must be the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext

from schema.extensions import ExtensionsRunner

Log = list[str]


class Generators(SchemaExtension):
    def __init__(self, log: Log) -> None:
        self.log = log

    def on_operation(self) -> Iterator[None]:
        self.log.append("generator operation in")
        try:
            yield
        except ValueError:
            self.log.append("generator operation saw the error")
            raise
        self.log.append("generator operation out")

    def on_parse(self) -> Iterator[None]:
        self.log.append("generator parse in")
        yield
        self.log.append("generator parse out")


class AsyncGenerators(SchemaExtension):
    def __init__(self, log: Log) -> None:
        self.log = log

    async def on_operation(self) -> AsyncIterator[None]:
        self.log.append("async operation in")
        yield
        self.log.append("async operation out")

    async def on_execute(self) -> AsyncIterator[None]:
        self.log.append("async execute in")
        try:
            yield
        finally:
            self.log.append("async execute finally")


class Functions(SchemaExtension):
    def __init__(self, log: Log) -> None:
        self.log = log

    def on_validate(self) -> None:  # type: ignore[override]
        self.log.append("function validate")

    async def on_execute(self) -> None:  # type: ignore[override]
        self.log.append("coroutine execute")


class Quiet(SchemaExtension):
    """No hook at all."""


async def run(runner_class: type[SchemaExtensionsRunner], *, fail: bool) -> tuple[Log, str]:
    log: Log = []
    extensions: list[SchemaExtension] = [Generators(log), Quiet(), AsyncGenerators(log), Functions(log)]
    runner = runner_class(execution_context=ExecutionContext(query="{ __typename }", schema=None,  # type: ignore[arg-type]
                                                             allowed_operations=()),
                          extensions=extensions)
    raised = ""
    try:
        async with runner.operation():
            async with runner.parsing():
                log.append("parse")
            async with runner.validation():
                log.append("validate")
            async with runner.executing():
                log.append("execute")
                if fail:
                    raise ValueError("inside the operation")
    except ValueError as error:
        raised = str(error)
    return log, raised


@pytest.mark.parametrize("fail", [False, True])
async def test_each_kind_of_hook_runs_as_strawberry_runs_it(fail: bool) -> None:
    for _ in range(2):  # the second time from the hooks made the first time
        ours = await run(ExtensionsRunner, fail=fail)
        assert ours == await run(SchemaExtensionsRunner, fail=fail)
    log, raised = ours
    assert raised == ("inside the operation" if fail else "")
    assert "generator operation in" in log and "async execute finally" in log and "coroutine execute" in log
    assert ("generator operation saw the error" in log) is fail
