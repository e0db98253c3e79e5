#!/usr/bin/env python3
"""A minimal LXD container image with a shell, from Debian's busybox-static.

The test LXD (scripts/lxd-test-env.sh) has no internet and so no image
server; its own seed image is a sleeping static init, which is enough to
count a running instance but not for `lxc exec`, `lxc console` or
`lxc file`. This builds a unified image tarball:

    metadata.yaml
    rootfs/bin/busybox          Debian's static busybox (/bin/busybox)
    rootfs/<applet>             a symbolic link to it for every applet
                                (busybox --list-full: sh, ls, sha256sum...,
                                sbin/init among them)
    rootfs/etc/inittab          busybox init: a shell on the console
    rootfs/etc/passwd, group    root only
    rootfs/{dev,proc,sys,tmp,run,root}

and imports it into the LXD once, under the alias ALIAS. A later call finds
the alias and does nothing; concurrent callers (several test files share the
LXD) serialise on a lock file. The image is left in the LXD for the next
run (it is never changed, and it costs about 2 MiB).

    python3 tests/integration/busybox_image.py [LXD_SOCKET]

prints the alias. As a module: ensure(lxd_socket) -> alias, and
build(directory, description) -> path of a new tarball (tests import their
own variants of it).
"""

import fcntl
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

ALIAS = "lxcm-busybox"
BUSYBOX = "/bin/busybox"
LOCK = "/tmp/lxcm-busybox-image.lock"

INITTAB = b"""\
# busybox init: a login shell on the console (what `lxc console` attaches to)
::respawn:-/bin/sh
::ctrlaltdel:/bin/true
::shutdown:/bin/true
"""

FILES = {
    "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
    "etc/group": b"root:x:0:\n",
    "etc/inittab": INITTAB,
    "etc/profile": b"export PATH=/usr/sbin:/usr/bin:/sbin:/bin\nexport PS1='# '\n",
}
DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "tmp", "run",
        "root", "var/log")


def _applets():
    out = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True,
                         check=True).stdout
    return sorted({ln.strip() for ln in out.splitlines() if ln.strip()} - {"bin/busybox"})


def _info(name, kind, mode, size=0, link=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.linkname = kind, mode, size, link
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.mtime = int(time.time())
    return ti


def build(directory, description="lxcm test image (busybox-static)"):
    """Writes a unified image tarball into directory; returns its path."""
    if not os.access(BUSYBOX, os.X_OK):
        raise RuntimeError("%s is missing (Debian's busybox-static; scripts/install-deps.sh)"
                           % BUSYBOX)
    path = os.path.join(directory, "busybox-image.tar.gz")
    meta = ("architecture: %s\ncreation_date: %d\nproperties:\n  description: %s\n"
            "  os: busybox\n  release: test\n" % (os.uname().machine, int(time.time()),
                                                  json.dumps(description)))
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_info("metadata.yaml", tarfile.REGTYPE, 0o644, len(meta)),
                    io.BytesIO(meta.encode()))
        tar.addfile(_info("rootfs", tarfile.DIRTYPE, 0o755))
        for d in DIRS:
            tar.addfile(_info("rootfs/" + d, tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755))
        with open(BUSYBOX, "rb") as f:
            tar.addfile(_info("rootfs/bin/busybox", tarfile.REGTYPE, 0o755,
                              os.fstat(f.fileno()).st_size), f)
        made = set(DIRS)
        for applet in _applets():
            parent = os.path.dirname(applet)
            if parent and parent not in made:
                tar.addfile(_info("rootfs/" + parent, tarfile.DIRTYPE, 0o755))
                made.add(parent)
            tar.addfile(_info("rootfs/" + applet, tarfile.SYMTYPE, 0o777, link="/bin/busybox"))
        for name, data in sorted(FILES.items()):
            tar.addfile(_info("rootfs/" + name, tarfile.REGTYPE, 0o644, len(data)),
                        io.BytesIO(data))
    return path


def _has_alias(lxd_socket, alias):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect(lxd_socket)
        s.sendall(("GET /1.0/images/aliases/%s HTTP/1.0\r\nHost: lxd\r\n\r\n" % alias).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return data.split(b" ", 2)[1] == b"200"


def lxc_env(lxd_socket, conf_dir):
    """The environment for an `lxc` whose local remote is lxd_socket, with
    a throwaway client configuration (the user's is not read or changed)."""
    env = dict(os.environ)
    env.pop("LXD_DIR", None)
    env.update(LXD_SOCKET=lxd_socket, LXD_CONF=conf_dir, HOME=conf_dir)
    return env


def ensure(lxd_socket, alias=ALIAS):
    """Imports the image under alias unless the LXD has it; returns alias."""
    if _has_alias(lxd_socket, alias):
        return alias
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _has_alias(lxd_socket, alias):
            return alias
        work = tempfile.mkdtemp(prefix="lxcm-bb-")
        try:
            tarball = build(work)
            conf = os.path.join(work, "conf")
            os.mkdir(conf)
            cp = subprocess.run(["lxc", "image", "import", tarball, "--alias", alias],
                                capture_output=True, text=True, timeout=300,
                                env=lxc_env(lxd_socket, conf), stdin=subprocess.DEVNULL)
            if cp.returncode != 0 and not _has_alias(lxd_socket, alias):
                raise RuntimeError("lxc image import failed: %s%s" % (cp.stdout, cp.stderr))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return alias


if __name__ == "__main__":
    sock = sys.argv[1] if len(sys.argv) > 1 else "/tmp/lxcm-lxd/lxd/unix.socket"
    print(ensure(sock))
