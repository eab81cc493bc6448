"""The agent's RouterOS poll set done by PyPI librouteros (a client Outpost did
not write), for bench/routeros.sh: the same commands with the same .proplist,
against the same simulated devices, measuring this process's CPU time per
device-poll.

Usage: routeros_librouteros.py --mode login|persistent --seconds S
                               [--user U] [--password P] SIM_OUTPUT...

SIM_OUTPUT files are what outpost-sim printed (`device <ip> api=<port> ...
ros=<version> ...` lines). Every device is polled once, in order, within S
seconds of wall time (one poll interval); devices not reached by then are
left out and reported (the polls done are then a sample).

  login       connect, log in, run the poll set, close: per poll, as tools
              that log in for every poll do;
  persistent  one connection per device, opened (and logged in) before the
              measured pass and kept open, as the agent does.

Prints one JSON object: devices, polls, errors, cpu_s (user + system of
this process during the measured pass; in persistent mode opening the
connections is not included, as the agent's window starts with its sessions
open), wall_s, setup_s, cpu_ms_per_poll, max_rss_kb.

Which polls read the slow-changing facts and the log follows the agent
(agent/src/routeros/poll.rs): identity, routerboard and package update every
10th poll, the log every 5th; poll n of device i is the (i + n)-th, so one
pass over the fleet has the agent's steady-state mix.
"""

import argparse
import json
import resource
import sys
import time

from librouteros import connect
from librouteros.exceptions import LibRouterosError, TrapError
from librouteros.query import Key

# Paths and .proplist of outpost-routeros's commands (routeros/src/command/).
RESOURCE = ("system/resource", "version,board-name,architecture-name,uptime,cpu-load,free-memory,total-memory,"
            "free-hdd-space,total-hdd-space,last-config-change")
INTERFACES = ("interface", ".id,name,type,running,disabled,mac-address,rx-byte,tx-byte,rx-packet,tx-packet,"
              "link-downs,last-link-down-time")
HEALTH = ("system/health", "name,value,type,state,voltage,current,temperature,cpu-temperature,board-temperature1,"
          "board-temperature2,sfp-temperature,switch-temperature,power-consumption,fan1-speed,fan2-speed,fan3-speed,"
          "fan4-speed,psu1-voltage,psu2-voltage,psu1-state,psu2-state,poe-out-consumption")
IDENTITY = ("system/identity", "name")
ROUTERBOARD = ("system/routerboard", "serial-number,model,current-firmware,upgrade-firmware")
PACKAGE_UPDATE = ("system/package/update", "channel,installed-version,latest-version,status")
ADDRESSES = ("ip/address", "address,network,interface,disabled,dynamic")
NEIGHBORS = ("ip/neighbor", "address,mac-address,identity,platform,version,board,interface,discovered-by")
LEASES = ("ip/dhcp-server/lease", "address,mac-address,host-name,status,expires-after,server,dynamic")
WIRELESS = ("interface/wireless/registration-table", "mac-address,interface,signal-strength,tx-rate,rx-rate,tx-ccq,"
            "bytes,uptime")
WIFI = ("interface/wifi/registration-table", "mac-address,interface,signal,tx-rate,rx-rate,bytes,uptime")
LOG = ("log", ".id,time,topics,message")

SLOW_EVERY = 10
LOG_EVERY = 5


def keys(command):
    path, proplist = command
    return path.split("/"), [Key(k) for k in proplist.split(",")]


COMMANDS = {name: keys(c) for name, c in {
    "resource": RESOURCE, "interfaces": INTERFACES, "health": HEALTH, "identity": IDENTITY,
    "routerboard": ROUTERBOARD, "package_update": PACKAGE_UPDATE, "addresses": ADDRESSES,
    "neighbors": NEIGHBORS, "leases": LEASES, "wireless": WIRELESS, "wifi": WIFI, "log": LOG,
}.items()}


def run(api, name, optional=False):
    path, ks = COMMANDS[name]
    try:
        return list(api.path(*path).select(*ks))
    except TrapError:
        # The agent treats "no such command" as an empty answer for these.
        if optional:
            return []
        raise


def poll(api, major, n):
    """One poll: the agent's poll set for poll number n of a device."""
    out = {
        "resource": run(api, "resource"),
        "interfaces": run(api, "interfaces"),
        "health": run(api, "health", optional=True),
    }
    if n % SLOW_EVERY == 0:
        out["identity"] = run(api, "identity")
        out["routerboard"] = run(api, "routerboard", optional=True)
        out["package_update"] = run(api, "package_update", optional=True)
    out["addresses"] = run(api, "addresses")
    out["neighbors"] = run(api, "neighbors", optional=True)
    out["leases"] = run(api, "leases", optional=True)
    out["wireless"] = run(api, "wifi" if major >= 7 else "wireless", optional=True)
    if n % LOG_EVERY == 0:
        out["log"] = run(api, "log")
    return out


def devices_from(files):
    devices = []
    for name in files:
        with open(name, encoding="utf-8") as f:
            for line in f:
                words = line.split()
                if not words or words[0] != "device":
                    continue
                attrs = dict(w.split("=", 1) for w in words[2:] if "=" in w)
                devices.append((words[1], int(attrs["api"]), int(attrs["ros"].split(".")[0])))
    return devices


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=["login", "persistent"], required=True)
    p.add_argument("--seconds", type=float, default=60.0, help="wall-time budget of the measured pass")
    p.add_argument("--setup-seconds", type=float, default=600.0, help="budget for opening connections (persistent)")
    p.add_argument("--user", default="admin")
    p.add_argument("--password", default="admin")
    p.add_argument("--timeout", type=float, default=10.0, help="socket timeout per connection")
    p.add_argument("sim_output", nargs="+")
    a = p.parse_args()
    devices = devices_from(a.sim_output)
    if not devices:
        sys.exit("no `device` lines in " + " ".join(a.sim_output))

    def open_one(ip, port):
        return connect(host=ip, username=a.user, password=a.password, port=port, timeout=a.timeout)

    sessions = {}
    setup_errors = 0
    setup_s = 0.0
    if a.mode == "persistent":
        t = time.monotonic()
        for ip, port, _ in devices:
            if time.monotonic() - t > a.setup_seconds:
                break
            try:
                sessions[ip] = open_one(ip, port)
            except (OSError, LibRouterosError):
                setup_errors += 1
        setup_s = time.monotonic() - t

    polls = errors = 0
    cpu0, t0 = cpu_seconds(), time.monotonic()
    for i, (ip, port, major) in enumerate(devices):
        if time.monotonic() - t0 >= a.seconds:
            break
        try:
            if a.mode == "login":
                api = open_one(ip, port)
                try:
                    poll(api, major, i)
                finally:
                    api.close()
            else:
                api = sessions.get(ip)
                if api is None:
                    errors += 1
                    continue
                poll(api, major, i)
            polls += 1
        except (OSError, LibRouterosError):
            errors += 1
    wall_s = time.monotonic() - t0
    cpu_s = cpu_seconds() - cpu0
    for api in sessions.values():
        try:
            api.close()
        except (OSError, LibRouterosError):
            pass
    json.dump({
        "mode": a.mode,
        "devices": len(devices),
        "polls": polls,
        "errors": errors,
        "setup_errors": setup_errors,
        "cpu_s": round(cpu_s, 3),
        "wall_s": round(wall_s, 3),
        "setup_s": round(setup_s, 3),
        "cpu_ms_per_poll": round(cpu_s * 1000 / polls, 3) if polls else None,
        "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
