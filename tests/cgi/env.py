#!/usr/bin/python3
# tests/cgi/env.py — the env dumper of tests/cgi/env.pl in Python, same output format:
#   env:NAME=value, argc:N, argv:I=value, fd:N, cwd:PATH
# (Python may add LC_CTYPE to its own environment when the locale is C, PEP 538; the e2e tests use env.pl for the
# exact environment and this one to show that Python CGI programs run.)
import os
import sys


def esc(s):
    return s.replace("\\", "\\\\").replace("\n", "\\n")


# os.listdir opens the directory as one more fd and closes it again: drop entries that no longer resolve.
fds = []
for name in os.listdir("/proc/self/fd"):
    try:
        os.readlink("/proc/self/fd/" + name)
    except OSError:
        continue
    fds.append(int(name))

out = ["env:%s=%s" % (esc(k), esc(v)) for k, v in sorted(os.environ.items())]
out.append("argc:%d" % len(sys.argv))
out += ["argv:%d=%s" % (i, esc(a)) for i, a in enumerate(sys.argv)]
out += ["fd:%d" % fd for fd in sorted(fds)]
out.append("cwd:" + os.getcwd())
body = ("\n".join(out) + "\n").encode("utf-8", "surrogateescape")

sys.stdout.buffer.write(b"Content-Type: text/plain; charset=utf-8\r\n")
sys.stdout.buffer.write(b"Content-Length: %d\r\n\r\n" % len(body))
sys.stdout.buffer.write(body)
