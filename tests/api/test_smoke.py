from tests.factories import Tenant, make_patient

READ = """query($id: ID!) { patient(id: $id) { id fullName phone diagnoses contacts { name phone } } }"""


async def test_front_desk_registers_and_reads(tenant: Tenant) -> None:
    pid = await make_patient(tenant, phone="13800138000")
    reply = await tenant.call("front_desk", READ, id=str(pid))
    print(reply.body)
    assert reply.data["patient"]["phone"] == "+8613800138000"
    assert reply.codes == ["FORBIDDEN"]
