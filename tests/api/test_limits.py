from tortoise import connections
async def test_explore(tenant, database_url) -> None:
    conn = connections.get("default")
    print([dict(r) for r in (await conn.execute_query("pragma journal_mode"))[1]])
    print(type(conn), conn.filename if hasattr(conn, "filename") else None)
