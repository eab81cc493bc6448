"""A client of the public API that Outpost did not write: PyPI grpcio, with
stubs generated at run time by grpcio-tools from the published
proto/outpost/api/v1/api.proto.

Usage: api_grpcio.py PROTO_ROOT HOST:PORT CA_PEM_FILE SERVER_NAME TOKEN

Lists agents and devices with the API token and prints one JSON object:
{"whoami": {...}, "agents": [...], "devices": [...], "unauthenticated": CODE}
where the last entry is the status code name of a call without a token.
"""
import importlib
import json
import os
import sys
import tempfile

import grpc
from grpc_tools import protoc


def stubs(proto_root: str, out: str):
    rel = "outpost/api/v1/api.proto"
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main(["protoc", f"-I{proto_root}", f"-I{include}", f"--python_out={out}",
                      f"--grpc_python_out={out}", rel])
    if rc != 0:
        raise SystemExit(f"protoc failed on {rel} (exit {rc})")
    sys.path.insert(0, out)
    return (importlib.import_module("outpost.api.v1.api_pb2"),
            importlib.import_module("outpost.api.v1.api_pb2_grpc"))


def main() -> None:
    proto_root, addr, ca_file, server_name, token = sys.argv[1:6]
    with tempfile.TemporaryDirectory() as out:
        pb, rpc = stubs(proto_root, out)
        with open(ca_file, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        options = [("grpc.ssl_target_name_override", server_name)]
        with grpc.secure_channel(addr, creds, options=options) as channel:
            md = [("authorization", f"Bearer {token}")]
            me = rpc.SessionServiceStub(channel).WhoAmI(pb.WhoAmIRequest(), metadata=md, timeout=20)
            agents = rpc.AgentServiceStub(channel).ListAgents(pb.ListAgentsRequest(), metadata=md, timeout=20)
            devices = rpc.DeviceServiceStub(channel).ListDevices(pb.ListDevicesRequest(), metadata=md, timeout=20)
            try:
                rpc.AgentServiceStub(channel).ListAgents(pb.ListAgentsRequest(), timeout=20)
                anonymous = "OK"
            except grpc.RpcError as e:
                anonymous = e.code().name
        print(json.dumps({
            "whoami": {"username": me.username, "credential": me.credential, "token_scope": me.token_scope},
            "agents": [{"id": a.id, "tenant_name": a.tenant_name, "hostname": a.hostname} for a in agents.agents],
            "devices": [{"id": d.id, "tenant_name": d.tenant_name, "address": d.address} for d in devices.devices],
            "unauthenticated": anonymous,
        }))


if __name__ == "__main__":
    main()
