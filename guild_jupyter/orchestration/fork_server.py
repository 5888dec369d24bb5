"""A fork server for trial processes: a fresh interpreter, started once, forked per trial.

Starting a Python interpreter costs ~20 ms of CPU on a small machine, more
than a trivial trial's own work; a 1,000-trial sweep of short trials spends
most of its time starting interpreters. The trial worker starts this server
once per sweep with the trials' own interpreter and environment; the server
does nothing but wait on its socket, so its state is the state of ``python``
just after start-up (plus the few builtin modules it uses and the modules it
was asked to preload, e.g. the cell runner). For each trial it forks; the
child becomes the trial's process exactly as ``python SCRIPT ARGS`` or
``python -c CODE ARGS`` would set it up: its own session, the given stdout and
stderr pipes, working directory, environment, ``sys.argv``, ``sys.path[0]``
and a new ``__main__``; it then runs the code at top level, so exit codes,
``SystemExit``, uncaught exceptions (the traceback without this bootstrap's
frame), ``KeyboardInterrupt``, ``atexit`` and thread joins behave as in a
fresh interpreter. What differs: the hash seed is the server's (shared by the
trials of one sweep) and ``ps`` shows the server's command line. Details in
docs/decisions.md; ``GUILD_JUPYTER_TRIAL_FORK=0`` starts each trial as a new
interpreter instead.

Protocol on a SOCK_SEQPACKET socket (marshal-encoded tuples):
``(argv, cwd, env)`` with the stdout and stderr fds attached (SCM_RIGHTS) ->
``("spawned", pid)`` or ``("error", text)``; later ``("exit", pid, returncode)``
when the server has reaped the child. The worker closing the socket ends the
server; children that still run are left to run (they are runs).

Imports: only builtin or already-loaded modules (``_socket``, ``select``,
``marshal``, ``gc``), so that a trial's ``sys.modules`` is close to a fresh
one's. The server's objects are frozen out of the garbage collector
(``gc.freeze``): a child's collections, and its final one at exit, then skip
them instead of touching (and so copying) every page of the inherited heap.
"""

import _socket
import marshal
import os
import select
import sys

BOOT = (
    "from guild_jupyter.orchestration.fork_server import serve as _s; "
    "_c, _g = _s(); del _s; exec(_c, _g)"
)
MAX_MESSAGE = 1 << 22


def serve():  # -> (code, globals) in a forked child; never returns in the server
    """The server's loop (``python -c BOOT FD [PRELOAD...]``)."""
    fd = int(sys.argv[1])
    try:  # children are followed through pidfds (Linux 5.3+); without them, no server
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        os._exit(3)  # the worker sees the socket close and starts new interpreters instead
    for name in sys.argv[2:]:
        __import__(name)
    import gc

    gc.collect()
    gc.freeze()  # never traversed again, here or in a child (no copy-on-write of them)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, fd)
    server_main = sys.modules["__main__"].__dict__
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    children = {}  # pidfd -> pid
    while True:
        for ready, _ in poller.poll():
            if ready != fd:
                pid = children.pop(ready)
                poller.unregister(ready)
                os.close(ready)
                _, status = os.waitpid(pid, 0)
                _send(sock, ("exit", pid, os.waitstatus_to_exitcode(status)))
                continue
            try:
                data, fds = _receive(sock)
            except OSError:
                data, fds = b"", []
            if not data:  # the worker is gone: so is this server (its children run on)
                os._exit(0)
            try:
                argv, cwd, env = marshal.loads(data)
                out, err = fds
                prepared = _prepare(argv, cwd)
            except Exception as e:
                for f in fds:
                    os.close(f)
                _send(sock, ("error", f"{type(e).__name__}: {e}"))
                continue
            pid = os.fork()
            if pid == 0:
                sock.detach()
                return _become(prepared, cwd, env, out, err, server_main)
            os.close(out)
            os.close(err)
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:  # out of fds (pidfds work: checked at start): follow it here
                _, status = os.waitpid(pid, 0)
                _send(sock, ("spawned", pid))
                _send(sock, ("exit", pid, os.waitstatus_to_exitcode(status)))
                continue
            children[pidfd] = pid
            poller.register(pidfd, select.POLLIN)
            _send(sock, ("spawned", pid))


def _receive(sock):
    space = _socket.CMSG_SPACE(2 * 4)
    data, ancillary, _, _ = sock.recvmsg(MAX_MESSAGE, space)
    fds = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            view = memoryview(payload)
            fds += list(view[: len(payload) - len(payload) % 4].cast("i"))
    return data, fds


def _send(sock, message):
    try:
        sock.send(marshal.dumps(message))
    except OSError:
        os._exit(0)  # the worker is gone


def _prepare(argv, cwd):
    """What to run: (code, argv for sys.argv, sys.path[0], __file__ or None)."""
    if len(argv) >= 3 and argv[1] == "-c":
        return compile(argv[2], "<string>", "exec"), ["-c", *argv[3:]], "", None
    if len(argv) < 2 or argv[1].startswith("-"):
        raise ValueError(f"not a script or -c command line: {argv[:2]}")
    script = os.path.normpath(os.path.join(cwd, argv[1]))  # relative to the trial's cwd
    with open(script, "rb") as f:
        source = f.read()
    code = compile(source, script, "exec", dont_inherit=True)
    return code, argv[1:], os.path.dirname(os.path.realpath(script)), script


def _close_fds_from(low):
    """Close every fd >= ``low``: the open ones as /proc lists them (closing a range up to
    the fd limit is a loop of a million calls where the kernel lacks close_range)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        os.closerange(low, 1 << 16)
        return
    for name in names:
        fd = int(name)
        if fd >= low:
            try:
                os.close(fd)
            except OSError:
                pass  # the listing's own fd, already closed


def _become(prepared, cwd, env, out, err, server_main):
    """In the child: set up the trial's process; returns what the bootstrap line executes."""
    code, argv, path0, file = prepared
    os.setsid()
    os.dup2(out, 1)
    os.dup2(err, 2)
    _close_fds_from(3)  # the server's socket, pidfds, the received pipe fds
    os.chdir(cwd)
    os.environb.clear()
    os.environb.update(env)
    sys.argv = argv
    sys.path[0] = path0
    for key in list(sys.path_importer_cache):
        if not os.path.isabs(key):
            del sys.path_importer_cache[key]
    module = type(sys)("__main__")
    module.__builtins__ = sys.modules["builtins"]
    if file is not None:
        module.__file__ = file
        module.__cached__ = None
        loader = sys.modules["_frozen_importlib_external"].SourceFileLoader
        module.__loader__ = loader("__main__", file)
    else:
        module.__loader__ = sys.modules["_frozen_importlib"].BuiltinImporter
    sys.modules["__main__"] = module

    def excepthook(kind, value, tb):  # without the bootstrap line's frame
        if tb is not None and tb.tb_frame.f_globals is server_main:
            tb = tb.tb_next
            if isinstance(value, BaseException):
                value.__traceback__ = tb  # what the default hook prints from
        sys.__excepthook__(kind, value, tb)

    sys.excepthook = excepthook
    return code, module.__dict__
