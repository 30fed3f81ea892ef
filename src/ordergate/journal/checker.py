"""The whole-chain check of a journal in a second process, beside the work that needs it.

A restart must prove the chain before it acts on the state the journal rebuilds, and the chain
check is the larger half of a large journal's start-up (it reads and hashes every record),
while the other half (latest snapshot + tail replay) reads little of it. Both are CPU-bound
Python, so the check runs in a child process on the other core: `ChainCheckProcess(url)`
starts it, `result()` waits for `check_kept_heads(journal, journal.verify())` as the child
computed it, on its own read-only handle. The caller must not act (append, send to a broker)
before it has the result.

The child is started with "spawn" (no inherited connections, locks or threads), so the
program that starts it must guard its entry point (`if __name__ == "__main__":`), as the
`ordergate` command does: spawn imports the main module again. It sends one message back.
If it dies without one (killed, out of memory), `result()` says so with None and the caller
checks in its own process instead: a missing answer is never taken for a good one.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection

from ordergate.journal.base import Durability, JournalError, VerifyReport

_EXIT_GRACE_S = 5.0

Verdict = tuple[VerifyReport, str]
"""The chain report checked against the kept heads, and a note for the operator (see
`check_kept_heads`)."""


def verify_at(url: str, epoch: int | None = None) -> Verdict:
    """Open the journal at `url` read-only (no record is added) and check its chain and kept
    heads. `epoch`: a PostgreSQL writer's lease epoch, so the reader is not refused as fenced
    on a stream with a lease."""
    from ordergate.journal import check_kept_heads, open_journal

    journal = open_journal(url, durability=Durability.NONE, create=False, epoch=epoch,
                           reader=True)
    try:
        return check_kept_heads(journal, journal.verify())
    finally:
        journal.close()


def _child(conn: Connection, url: str, epoch: int | None) -> None:
    try:
        try:
            message: tuple[str, object] = ("verdict", verify_at(url, epoch))
        except JournalError as exc:
            message = ("error", str(exc))
        conn.send(message)
    except OSError:
        pass  # the parent is gone (killed, or it stopped waiting): nobody to answer
    finally:
        conn.close()


class ChainCheckProcess:
    """`verify_at(url, epoch)` in a child process (see the module docstring)."""

    def __init__(self, url: str, epoch: int | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        self._receive = receive
        self._process = context.Process(target=_child, args=(send, url, epoch),
                                        name="ordergate-chain-check", daemon=True)
        try:
            self._process.start()
        except BaseException:
            # no process to be had (a process limit, no memory): nothing to wait for
            receive.close()
            raise
        finally:
            send.close()  # the child holds the only sending end: its exit ends the pipe

    def result(self) -> Verdict | None:
        """The child's verdict, or None when it ended without giving one. A journal it could
        not open or read raises that JournalError here."""
        try:
            kind, value = self._receive.recv()
        except EOFError:
            return None
        finally:
            # it exits once it has sent; `close` stops it only if it has not by then
            self._process.join(_EXIT_GRACE_S)
            self.close()
        if kind == "error":
            raise JournalError(str(value))
        report, note = value
        return report, note

    def close(self) -> None:
        """Stop the child if it is still checking (the caller gave up waiting) and reap it."""
        process = self._process
        if process.is_alive():
            process.terminate()
        process.join()
        self._receive.close()
