"""`cervixscope demo` and `cervixscope dashboard`: the demo pipeline and the dashboard server."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECRETS_PATH = ROOT / ".streamlit" / "secrets.toml"
PRETRAINED_WEIGHTS = (
    "ResNet18_Weights.IMAGENET1K_V1",
    "ResNet34_Weights.IMAGENET1K_V1",
    "ResNet50_Weights.IMAGENET1K_V2",
    "VGG16_BN_Weights.IMAGENET1K_V1",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="build the demo cohort, ingest it, run the model comparison and seed the demo study",
        description="Everything `make demo` needs before the dashboard starts; re-running reuses "
        "what is already built. Example: cervixscope demo --out data/demo",
    )
    demo.add_argument("--out", default="data/demo", help="demo cohort folder (default data/demo)")
    demo.add_argument("--seed", type=int, default=0, help="cohort and CV seed (default 0)")
    demo.add_argument(
        "--port", type=int, default=8501, help="the dashboard's port, for the URL it prints"
    )
    demo.set_defaults(handler=_demo)

    dash = subparsers.add_parser(
        "dashboard",
        help="start the Streamlit dashboard",
        description="Example: cervixscope dashboard --port 8501",
    )
    dash.add_argument("--port", type=int, default=8501)
    dash.add_argument("--address", default="localhost", help="use 0.0.0.0 inside Docker")
    dash.set_defaults(handler=_dashboard)

    prefetch = subparsers.add_parser(
        "prefetch-weights",
        help="download and cache the ImageNet weights of every pretrained architecture",
        description="Run once on a machine with internet (the Docker build does). "
        "Example: cervixscope prefetch-weights",
    )
    prefetch.set_defaults(handler=_prefetch_weights)

    unlock = subparsers.add_parser(
        "unlock-admin",
        help="lift the admin sign-in lockout and every sign-in back-off (audited)",
        description="For the holder of the admin secret: it must be readable here "
        "($CERVIXSCOPE_ADMIN_SECRET or .streamlit/secrets.toml). Failures and "
        "lockouts before the unlock no longer count. Example: cervixscope unlock-admin",
    )
    unlock.set_defaults(handler=_unlock_admin)


def _demo(args: argparse.Namespace) -> int:
    from core.commands.demo_pipeline import run_demo

    run_demo(
        Path(args.out), seed=args.seed, db_path=args.db, secrets_path=SECRETS_PATH,
        url=f"http://localhost:{args.port}",
    )  # fmt: skip
    return 0


def _unlock_admin(args: argparse.Namespace) -> int:
    import getpass
    import socket

    import db
    from core.project.admin_secret import read_admin_secret

    if not read_admin_secret(SECRETS_PATH):
        raise ValueError(
            f"no admin secret is configured (CERVIXSCOPE_ADMIN_SECRET or {SECRETS_PATH}): only "
            "the holder of the secret may unlock admin sign-in"
        )
    conn = db.connect(args.db)
    try:
        event_id = db.unlock_admin(conn, by=f"cli:{getpass.getuser()}@{socket.gethostname()}")
    finally:
        conn.close()
    print(f"Admin sign-in unlocked; earlier failures no longer count (audit event {event_id}).")
    return 0


def _prefetch_weights(args: argparse.Namespace) -> int:
    import socket

    from torchvision.models import get_weight

    socket.setdefaulttimeout(30)  # an unreachable server fails in bounded time, never hangs
    for name in PRETRAINED_WEIGHTS:
        weights = get_weight(name)
        try:
            weights.get_state_dict(progress=True)
        except OSError as exc:  # URLError, DNS failure, timeout
            reason = getattr(exc, "reason", exc)
            print(
                f"cervixscope prefetch-weights: error: cannot download the {name} weights from "
                f"{weights.url} ({reason}); run it where the internet is reachable (the Docker "
                "build does), or train with --weights none",
                file=sys.stderr,
            )
            return 1
        print(f"cached {name}")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from core.project.admin_secret import ADMIN_SECRET_ENV, ensure_admin_secret
    from core.project.proxies import TRUSTED_PROXIES_ENV, trusted_proxies

    secret, created = ensure_admin_secret(SECRETS_PATH)
    proxies = trusted_proxies()  # a bad setting stops here, named, not at the first sign-in
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    shown = "localhost" if args.address in ("0.0.0.0", "localhost") else args.address
    print(f"CervixScope dashboard: http://{shown}:{args.port}")
    # The secret is shown once, when it is made; later starts say where it is kept, so it never
    # lands in container or CI logs again.
    if created:
        print(f"Admin secret (new, kept in {SECRETS_PATH}): {secret}")
    elif os.environ.get(ADMIN_SECRET_ENV):
        print(f"Admin secret: from ${ADMIN_SECRET_ENV}")
    else:
        print(f"Admin secret: in {SECRETS_PATH}")
    trusted = ", ".join(map(str, proxies)) or "none (X-Forwarded-For is ignored)"
    print(f"Trusted proxies (${TRUSTED_PROXIES_ENV}): {trusted}")
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "dashboard" / "app.py"),
        "--server.port",
        str(args.port),
        "--server.address",
        args.address,
    ]
    return run_forwarding_signals(command, cwd=ROOT, env=env)


def run_forwarding_signals(command: list[str], **popen) -> int:
    """Run ``command`` as a child and pass SIGTERM, SIGINT and SIGHUP on to it.

    Stopping the wrapper (``docker stop``, a supervisor, Ctrl-C) must stop the server too; a plain
    ``subprocess.call`` would leave it running and answering. Returns the child's exit status.
    """
    child = subprocess.Popen(command, **popen)
    forwarded = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in forwarded}

    def forward(signum, _frame) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    for sig in forwarded:
        signal.signal(sig, forward)
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # SIGINT already forwarded; wait for the child to stop
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
