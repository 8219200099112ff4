"""The outbox worker of production (`flask outbox run`), with timers short enough for a check.

    python -m bench.faults.outbox_worker --lease 3 --retry 1 --interval 0.3

The same command and code as `flask outbox run`; only the lease of a claimed message (how
long before a dead worker's messages are taken up again; 5 minutes in production) and the
first retry delay after a failed send (1 minute in production) are shortened, so that a
fault check finishes in seconds instead of minutes.
"""

from __future__ import annotations

import argparse
from datetime import timedelta


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lease", type=float, default=3.0, help="seconds")
    parser.add_argument("--retry", type=float, default=1.0, help="first retry delay, seconds")
    parser.add_argument("--interval", type=float, default=0.3)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()

    from booking import create_app
    from booking.services import mail

    mail.LEASE = timedelta(seconds=args.lease)
    mail.BACKOFF_FIRST = timedelta(seconds=args.retry)
    mail.BACKOFF_MAX = timedelta(seconds=max(args.retry * 4, args.retry))
    app = create_app()
    with app.app_context():
        mail.outbox_cli.main(args=["run", "--interval", str(args.interval), "--batch",
                                   str(args.batch)], prog_name="flask outbox",
                             standalone_mode=False)


if __name__ == "__main__":
    main()
