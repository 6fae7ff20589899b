#!/usr/bin/env python3
"""Black-box FHIR R4 conformance suite (standard library only).

    python3 conformance/run.py --base-url https://localhost:8443/fhir \\
        [--cacert certs/dev/ca.crt] [--cert CRT --key KEY] [--bearer TOKEN] \\
        [--identities FILE] [--patient-base-url URL] [--cors-origin ORIGIN] [--examples DIR] [--only NAME[,NAME...]] [-v]

Prints `PASS name` or `FAIL name: reason` per check, then `N passed, M failed`.
Exit status: 0 if nothing failed, 1 if something failed, 2 on a usage error.
"""

import argparse
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from client import Client, TransportError          # noqa: E402
from checks import CheckFailed, load_all            # noqa: E402
from checks.common import Context                   # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="conformance/run.py",
        description="Black-box FHIR R4 conformance suite for caregate (runs against any FHIR R4 server).")
    p.add_argument("--base-url", required=True,
                   help="FHIR base URL, e.g. https://localhost:8443/fhir")
    p.add_argument("--cacert", help="CA certificate (PEM) to verify the server with")
    p.add_argument("--cert", help="client certificate (PEM) for mutual TLS")
    p.add_argument("--key", help="private key (PEM) of the client certificate")
    p.add_argument("--bearer", help="bearer token sent as 'Authorization: Bearer TOKEN' on every request")
    p.add_argument("--insecure", action="store_true", help="do not verify the server certificate")
    p.add_argument("--identities", metavar="FILE",
                   help="JSON naming callers for the access-control checks (caregate's default policy): "
                        "{name: {cert, key, token}} plus {\"bad_tokens\": {name: token}}; see "
                        "conformance/README.md. Without it the access checks are skipped.")
    p.add_argument("--patient-base-url", metavar="URL",
                   help="base URL of caregate's patient-facing endpoint, e.g. https://localhost:9443/fhir; "
                        "with citizens in --identities, the patient checks run against it (no client "
                        "certificate is sent there). Without it they are skipped.")
    p.add_argument("--cors-origin", metavar="ORIGIN",
                   help="an origin the server names in its --cors-origins, e.g. https://app.example.nhs.uk: "
                        "the patient endpoint's CORS answers are checked for it and for another origin. "
                        "Without it that check is skipped.")
    p.add_argument("--examples", metavar="DIR",
                   help="directory of official R4 example JSON files (default: tests/data/r4-examples "
                        "under the repository root)")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only checks whose name is NAME or starts with NAME. (e.g. 'crud', "
                        "'crud.patient.read', 'examples.patient-example.json'); repeatable, comma-separated")
    p.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds (default 60)")
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    p.add_argument("-v", "--verbose", action="store_true", help="log each request and skipped example")
    a = p.parse_args(argv)
    if a.cert and not a.key or a.key and not a.cert:
        p.error("--cert and --key go together")
    a.only = [s.strip() for item in (a.only or []) for s in item.split(",") if s.strip()]
    return a


def selected(name, only):
    if not only:
        return True
    for s in only:
        if name == s or name.startswith(s + ".") or s.startswith(name + "."):
            return True
    return False


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    registry = load_all()
    if args.list:
        for name, _, _ in registry:
            print(name)
        return 0
    todo = [(n, fn, multi) for n, fn, multi in registry if selected(n, args.only)]
    if not todo:
        print("no check matches --only %s" % ",".join(args.only), file=sys.stderr)
        return 2
    try:
        client = Client(args.base_url, cacert=args.cacert, cert=args.cert, key=args.key,
                        bearer=args.bearer, insecure=args.insecure, timeout=args.timeout,
                        verbose=args.verbose)
    except (ValueError, OSError) as e:
        print("cannot set up the client: %s" % e, file=sys.stderr)
        return 2
    ctx = Context(client, args)
    ctx.only = args.only
    started = time.time()
    for name, fn, multi in todo:
        t0 = time.time()
        try:
            fn(ctx)
            if not multi:
                ctx.result(name)
        except CheckFailed as e:
            ctx.result(name, str(e))
        except TransportError as e:
            ctx.result(name, "transport: %s" % e)
        except Exception as e:  # a bug in a check, or a server answer it did not expect
            ctx.result(name, "%s: %s" % (type(e).__name__, e))
            if args.verbose:
                traceback.print_exc()
        if args.verbose:
            ctx.emit("    (%s took %.2fs)" % (name, time.time() - t0))
    client.close()
    passed = sum(1 for _, reason in ctx.results if reason is None)
    failed = len(ctx.results) - passed
    if args.verbose:
        ctx.emit("    (run token %s, %.1fs)" % (ctx.run_token, time.time() - started))
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
