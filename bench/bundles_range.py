#!/usr/bin/env python3
"""bench/bundles.py's Bundles for a range of citizens only: the Organizations' Bundle, then citizens
--first to --first + --citizens - 1, the same lines bundles.py writes for them (with the same options)
without generating the citizens before them. bench/run.sh loads the citizens that follow its
population's (which its database already holds) with it.
"""
import argparse
import datetime as dt
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bundles  # noqa: E402  (bench/bundles.py: the Bundles' shape)
import population  # noqa: E402  (bench/population.py: the same citizens, the same records)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--first", type=int, required=True, help="the first citizen's index (0 is the first)")
    parser.add_argument("--citizens", type=int, required=True, help="how many citizens from --first")
    parser.add_argument("--seed", type=int, default=1, help="the population's seed (default 1)")
    parser.add_argument("--mean-resources", type=float, default=100, help="mean resources per citizen (default 100)")
    parser.add_argument("--home-share", type=float, default=0.8, help="share of citizens registered with A81001 (default 0.8)")
    parser.add_argument("--as-of", default="2026-11-01", help="the day the records end (default 2026-11-01)")
    parser.add_argument("--max-entries", type=int, default=500, help="most entries in one Bundle (default 500)")
    parser.add_argument("--patient", choices=("create", "put"), default="create", help="as bundles.py (default create)")
    parser.add_argument("--citizen-ref", choices=("fullurl", "literal", "conditional"), default="fullurl",
                        help="as bundles.py (default fullurl)")
    parser.add_argument("--idempotent", action="store_true", help="as bundles.py")
    parser.add_argument("--out", default="-", help="the NDJSON of Bundles to write (default stdout)")
    args = parser.parse_args()
    if args.first < 0 or args.citizens < 0:
        parser.error("--first and --citizens must not be negative")
    if args.max_entries < 1:
        parser.error("--max-entries must be at least 1")
    as_of = dt.date.fromisoformat(args.as_of)
    mean_weight = population.mean_record_weight()
    writer = bundles.bundle_writer(args)
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8", newline="\n")
    count = {"bundles": 0, "entries": 0}
    try:
        for b in writer.organisations()[1]:
            out.write(bundles.dumps(b) + "\n")
        for index in range(args.first, args.first + args.citizens):
            citizen = population.citizen_record(args.seed, index, args.mean_resources, args.home_share, as_of,
                                                mean_weight)
            for b in writer.citizen(citizen.build())[1]:
                out.write(bundles.dumps(b) + "\n")
                count["bundles"] += 1
                count["entries"] += len(b["entry"])
    finally:
        if out is not sys.stdout:
            out.close()
    print("bundles_range.py: citizens %d to %d, %d bundles, %d entries"
          % (args.first, args.first + args.citizens - 1, count["bundles"], count["entries"]), file=sys.stderr)


if __name__ == "__main__":
    main()
