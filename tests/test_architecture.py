"""Dependencies point one way (app -> schema -> resolvers -> policies | audit -> models -> core)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    linter = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_no_module_imports_itself_in_a_circle() -> None:
    """Within each layer too, dependencies point one way: no module reaches back to one that imports it."""
    import grimp

    circles = []
    for package in ("app", "schema", "resolvers", "policies", "audit", "models", "core"):
        graph = grimp.build_graph(package, cache_dir=None)  # type-only imports count: a circle is a circle
        for module in graph.modules:
            for imported in graph.find_modules_directly_imported_by(module):
                if imported.startswith(package) and graph.chain_exists(importer=imported, imported=module):
                    circles.append(graph.find_shortest_chain(importer=imported, imported=module))
    assert circles == []
