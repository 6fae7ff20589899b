#!/usr/bin/env python3
"""The failover test: two caregate nodes on one PostgreSQL database, the primary with a synchronous
standby; concurrent writers through both nodes; the primary killed with SIGKILL (every process of it,
as a machine failing would), the standby promoted (`pg_ctl promote`, as Patroni would), and checked:

- while there is no primary, each node's /ready answers 503 and a write 503, never a hang or a crash;
- after the promotion both nodes are ready again, on their own (libpq's multi-host URI with
  target_session_attrs=read-write finds the new primary);
- every write answered 2xx is there, with its exact content, at the version it was given, and every
  transaction is whole or absent (the crash test's checks, crash_test.py);
- the audit chain verifies (`caregate audit verify`);
- the nodes' log names each 503 by its request id (and its interaction), and holds no NHS number.

Repeated --rounds times (at least 5 in CI): each round makes a new standby of the new primary where the
old one was. Exit 0 when every round passed; 1 naming the first failure. Test data only: the
test-range NHS number 9000000009.

    tests/crash/failover_test.py --caregate build/caregate [--rounds 5] [--writers 8]
"""
import argparse
import http.client
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_test import NHS, Client, Ledger, check_round, free_port, patient, writer  # noqa: E402

BIN = "/usr/lib/postgresql/15/bin"


def as_postgres(command, **kwargs):
    """Runs a PostgreSQL tool as the postgres user when this runs as root (PostgreSQL refuses root)."""
    if os.getuid() == 0:
        command = ["runuser", "-u", "postgres", "--"] + command
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


class Cluster:
    """One PostgreSQL server of the pair: its data directory and port."""

    def __init__(self, work, name, port):
        self.dir = os.path.join(work, name)
        self.port = port
        self.log = os.path.join(work, name + ".log")
        self.socket_dir = work

    def start(self):
        as_postgres([f"{BIN}/pg_ctl", "-D", self.dir, "-l", self.log, "-w", "-t", "60", "-o",
                     f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.socket_dir}",
                     "start"])

    def query(self, sql):
        return as_postgres(["psql", "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "caregate", "-d", "caregate", "-qtAc", sql]).stdout.strip()

    def kill(self):
        """SIGKILL to the postmaster and every process it started, at once: the machine is gone."""
        with open(os.path.join(self.dir, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        children = subprocess.run(["ps", "--ppid", str(postmaster), "-o", "pid="], capture_output=True,
                                  text=True).stdout.split()
        for pid in [postmaster] + [int(c) for c in children]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                os.kill(postmaster, 0)
                time.sleep(0.05)
            except ProcessLookupError:
                return

    def promote(self):
        as_postgres([f"{BIN}/pg_ctl", "-D", self.dir, "-w", "-t", "60", "promote"])

    def stop(self):
        if os.path.exists(os.path.join(self.dir, "postmaster.pid")):
            subprocess.run((["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []) +
                           [f"{BIN}/pg_ctl", "-D", self.dir, "-m", "immediate", "-w", "stop"], capture_output=True)


def make_primary(cluster):
    as_postgres([f"{BIN}/initdb", "-D", cluster.dir, "-U", "caregate", "--auth=trust", "--encoding=UTF8", "--locale=C"])
    with open(os.path.join(cluster.dir, "postgresql.conf"), "a") as conf:
        conf.write("wal_level = replica\nmax_wal_senders = 10\nsynchronous_commit = on\nmax_connections = 200\n")
    cluster.start()
    as_postgres([f"{BIN}/createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "caregate", "caregate"])


def require_synchronous_standby(primary, required):
    """What Patroni does in its synchronous mode: a primary with a streaming standby waits, for each
    commit, until the standby has it (synchronous_standby_names); a primary alone (just promoted, its
    standby not yet made) commits alone, or no write could be acknowledged until a standby exists."""
    primary.query("ALTER SYSTEM SET synchronous_standby_names = '*'" if required
                  else "ALTER SYSTEM RESET synchronous_standby_names")
    primary.query("SELECT pg_reload_conf()")


def make_standby(standby, primary):
    """A streaming, synchronous standby of `primary` in standby's directory (emptied first)."""
    shutil.rmtree(standby.dir, ignore_errors=True)
    as_postgres([f"{BIN}/pg_basebackup", "-D", standby.dir, "-h", "127.0.0.1", "-p", str(primary.port),
                 "-U", "caregate", "-R", "-X", "stream", "--checkpoint=fast"])
    standby.start()
    require_synchronous_standby(primary, True)
    deadline = time.time() + 60
    while time.time() < deadline:
        if primary.query("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") == "1":
            return
        time.sleep(0.1)
    raise RuntimeError("the standby did not become synchronous within 60 s")


class Node:
    """One `caregate serve` on the database, with its admin listener for /ready."""

    def __init__(self, caregate, uri, log):
        self.caregate, self.uri, self.log = caregate, uri, log
        self.port, self.admin_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"

    def start(self):
        self.process = subprocess.Popen(
            [self.caregate, "serve", "--plain", "--listen", f"127.0.0.1:{self.port}", "--base-url", self.base,
             "--db", self.uri, "--certs", "certs/dev", "--patient-listen", "none",
             "--admin-listen", f"127.0.0.1:{self.admin_port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_for(lambda: self.ready() == 200, 60):
            raise RuntimeError("caregate serve was not ready within 60 s")

    def ready(self):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=5)
            c.request("GET", "/ready")
            return c.getresponse().status
        except OSError:
            return None

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


def wait_for(condition, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--caregate", default="build/caregate")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="caregate-failover-")
    if os.getuid() == 0:
        shutil.chown(work, "postgres", "postgres")
    pair = [Cluster(work, "a", free_port()), Cluster(work, "b", free_port())]
    uri = (f"postgresql://caregate@127.0.0.1:{pair[0].port},127.0.0.1:{pair[1].port}/caregate"
           "?target_session_attrs=read-write&connect_timeout=2")
    log = open(os.path.join(work, "nodes.log"), "ab")
    nodes = []
    try:
        make_primary(pair[0])
        make_standby(pair[1], pair[0])
        nodes = [Node(args.caregate, uri, log), Node(args.caregate, uri, log)]
        for node in nodes:
            node.base = nodes[0].base  # one base URL for both, as behind one load balancer
            node.start()
        token = subprocess.run([args.caregate, "token", "--certs", "certs/dev", "--aud", nodes[0].base, "--org", "QZZ",
                                "--role", "system", "--user", "failover-test", "--ttl", "7200"],
                               check=True, capture_output=True, text=True).stdout.strip()
        status, _ = Client(nodes[0].port, token).call("PUT", f"Patient/{NHS}", patient("Failover", "Test"))
        if not 200 <= status < 300:
            print(f"failover test: the Patient could not be written ({status})")
            return 1
        primary, standby = pair
        total = 0
        for round_ in range(1, args.rounds + 1):
            ledger = Ledger()
            stop = threading.Event()
            threads = [threading.Thread(target=writer, args=(w, round_, nodes[w % 2].port, token, ledger, stop,
                                                             rng.random()))
                       for w in range(args.writers)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.5, 1.5))
            primary.kill()
            if not all(wait_for(lambda n=n: n.ready() == 503, 15) for n in nodes):
                print(f"round {round_}: FAILED: a node's /ready did not answer 503 while there was no primary")
                return 1
            time.sleep(rng.uniform(0.2, 1.0))  # writes go on meanwhile, answered 503
            standby.promote()
            require_synchronous_standby(standby, False)  # until the new standby is made, below
            if not all(wait_for(lambda n=n: n.ready() == 200, 60) for n in nodes):
                print(f"round {round_}: FAILED: a node's /ready did not answer 200 after the promotion")
                return 1
            time.sleep(0.5)  # writes through the new primary
            stop.set()
            for t in threads:
                t.join()
            if not all(n.alive() for n in nodes):
                print(f"round {round_}: FAILED: a caregate node stopped")
                return 1
            problem = check_round(nodes[round_ % 2].port, token, ledger)
            total += len(ledger.acked)
            print(f"round {round_}: primary killed, standby promoted, {len(ledger.acked)} acknowledged writes "
                  f"through two nodes: {'FAILED: ' + problem if problem else 'all there'}", flush=True)
            if problem:
                return 1
            # The old primary's place takes a new standby of the new primary, for the next round.
            primary, standby = standby, primary
            if round_ < args.rounds:
                make_standby(standby, primary)
        for node in nodes:
            node.stop()
        nodes = []
        verified = subprocess.run([args.caregate, "audit", "verify", "--db", uri], capture_output=True, text=True)
        print(verified.stdout.strip())
        if verified.returncode != 0:
            print("failover test: the audit chain does not verify")
            return 1
        log.flush()
        with open(os.path.join(work, "nodes.log"), encoding="utf-8", errors="replace") as f:
            logged = f.read()
        answered_503 = re.findall(r"^caregate: request [0-9a-f-]{36} \(\S+\) answered 503$", logged, re.MULTILINE)
        if not answered_503:
            print("failover test: the nodes' log names no 503 by its request id")
            return 1
        if NHS in logged:
            print("failover test: the nodes' log holds an NHS number")
            return 1
        print(f"failover test: {args.rounds} failovers, {total} acknowledged writes all there, audit chain intact, "
              f"{len(answered_503)} answers of 503 logged by request id and nothing of a citizen")
        return 0
    finally:
        for node in nodes:
            if node.alive():
                node.stop()
        for cluster in pair:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
