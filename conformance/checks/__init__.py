"""Check registry.

A check is a function `fn(ctx)` registered with `@check("area.name")`.  It passes by
returning, and fails by raising `CheckFailed` (via `fail()` or the `expect_*` helpers in
`common`).  A check that reports several results of its own (the examples round trip)
is registered with `multi=True` and calls `ctx.result(name, reason_or_None)` instead.
"""

REGISTRY = []   # list of (name, fn, multi) in registration order

AREAS = ("capabilities", "crud", "history", "errors", "examples", "access", "search", "bundle", "conditional",
         "patient", "bulk_export")


class CheckFailed(Exception):
    pass


def fail(reason):
    raise CheckFailed(reason)


def eventually(condition, seconds=20.0, interval=0.25):
    """Runs `condition()` until it returns without CheckFailed, for at most `seconds`, and re-raises
    its last failure. For what the server promises to do soon rather than at once (reads' audit
    records are committed in batches): a fixed sleep would fail on a loaded machine."""
    import time
    deadline = time.monotonic() + seconds
    while True:
        try:
            return condition()
        except CheckFailed:
            if time.monotonic() >= deadline:
                raise
            time.sleep(interval)


def check(name, multi=False):
    def deco(fn):
        if any(n == name for n, _, _ in REGISTRY):
            raise RuntimeError("duplicate check name " + name)
        REGISTRY.append((name, fn, multi))
        return fn
    return deco


def gated_check(name, why_not):
    """Register `fn(ctx)` as check `name`, skipped (a SKIP line, neither pass nor fail) when
    `why_not(ctx)` gives a reason: what the server does not declare, or an input the run lacks."""
    def deco(fn):
        @check(name, multi=True)
        def run(ctx):
            why = why_not(ctx)
            if why:
                ctx.emit("SKIP %s: %s" % (name, why))
                return
            fn(ctx)
            ctx.result(name)
        return fn
    return deco


def needs_identities(ctx):
    """The reason to skip a check that acts as several callers when no --identities were given."""
    if not getattr(ctx.args, "identities", None):
        return "no --identities given (caregate's default policy)"
    return None


def load_all():
    """Import every area module so that its checks register themselves, in area order."""
    import importlib
    for area in AREAS:
        importlib.import_module(__name__ + "." + area)
    return REGISTRY
