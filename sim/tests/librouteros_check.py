"""Polls one simulated device with PyPI librouteros, a client Outpost did not
write, and prints what it read as JSON for sim/tests/librouteros.rs.

Usage: librouteros_check.py HOST API_PORT API_SSL_PORT USER PASSWORD
"""

import json
import ssl
import sys

from librouteros import connect
from librouteros.exceptions import TrapError
from librouteros.query import Key, Or


def poll(api):
    out = {}
    out["resource"] = list(api.path("system", "resource"))
    out["identity"] = list(api.path("system", "identity"))
    name, type_, running, rx = Key("name"), Key("type"), Key("running"), Key("rx-byte")
    out["interfaces"] = list(api.path("interface").select(name, type_, running, rx))
    out["addresses"] = list(api.path("ip", "address"))
    out["neighbors"] = list(api.path("ip", "neighbor"))
    try:
        out["routerboard"] = list(api.path("system", "routerboard"))
    except TrapError as e:
        out["routerboard"] = {"trap": e.message}
    out["query"] = list(
        api.path("interface").select(name).where(Or(name == "ether1", name == "bridge"))
    )
    return out


def main():
    host, port, ssl_port, user, password = sys.argv[1:6]
    plain = connect(host=host, username=user, password=password, port=int(port))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = connect(
        host=host, username=user, password=password, port=int(ssl_port), ssl_wrapper=ctx.wrap_socket
    )
    result = {"plain": poll(plain), "ssl": poll(tls)}
    plain.close()
    tls.close()
    json.dump(result, sys.stdout, default=str)


if __name__ == "__main__":
    main()
