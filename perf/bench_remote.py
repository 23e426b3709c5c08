"""Remote access cost: one plumbum command per read vs kumotui's agent channel.

Starts a throwaway sshd on 127.0.0.1 (as the tests do), then reads the
twelve parameters of the kumomta profile from /proc/sys three ways, several
rounds each, interleaved, and prints the median per read and the ratio:

- ``plumbum-cmd``: ``remote["cat"](path)``, a new SSH channel per command;
- ``plumbum-session``: one persistent ``remote.session()`` shell;
- ``agent``: kumotui's RemoteHost (one JSON request per read on one channel).

Run: ``.venv/bin/python bench/bench_remote.py [--rounds 5]``. Needs openssh-server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kumotui.hosts.address import HostSpec
from kumotui.hosts.remote import RemoteHost
from kumotui.tuning.profiles import load_profile
from kumotui.tuning.sysctl import key_to_relpath
from tests.support.sshd import start_sshd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = start_sshd(Path(tempfile.mkdtemp(prefix="kumotui-bench-sshd-")))
    os.environ["KUMOTUI_SSH_CONFIG"] = str(server.ssh_config)
    paths = [f"/proc/sys/{key_to_relpath(p.key)}" for p in load_profile("kumomta").params]
    host = RemoteHost(HostSpec.parse(server.spec))
    session = host.machine.session()
    cat = host.machine["cat"]
    timings: dict[str, list[float]] = {"plumbum-cmd": [], "plumbum-session": [], "agent": []}
    try:
        for _ in range(args.rounds):
            start = time.perf_counter()
            for path in paths:
                cat(path)
            timings["plumbum-cmd"].append((time.perf_counter() - start) / len(paths))
            start = time.perf_counter()
            for path in paths:
                session.run(f"cat {path}")
            timings["plumbum-session"].append((time.perf_counter() - start) / len(paths))
            start = time.perf_counter()
            for path in paths:
                host.read_text(Path(path))
            timings["agent"].append((time.perf_counter() - start) / len(paths))
    finally:
        session.close()
        host.close()
        server.stop()
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print(f"{'method':<16} {'median per read':>16}   (reads of {len(paths)} parameters, {args.rounds} rounds)")
    for name, value in medians.items():
        print(f"{name:<16} {value * 1000:>13.3f} ms   {medians['plumbum-cmd'] / value:>7.1f}x faster than plumbum-cmd")


if __name__ == "__main__":
    main()
