#!/usr/bin/python3
"""Checks that the Dockerfile's runtime stage installs every library the built programs link.

    /usr/bin/python3 tests/deploy/check_runtime_deps.py [--dockerfile=PATH] FILE_OR_DIR...

Give it the built rillflowd, rillflow and plugins (or an install tree such as a DESTDIR staging
directory: every ELF file under it is read). For each shared library an ELF file needs directly
(DT_NEEDED), it finds the Debian package that ships it on this machine (ldconfig -p, dpkg -S) and
requires that package in the runtime stage's `apt-get install` list, or in the few that every
debian:12-slim image has (libc6, libstdc++6, libgcc-s1). Libraries among the given files
themselves (librillflow.so.N) need no package. The image cannot be built here (no Docker engine);
this catches the usual way it breaks: a new dependency linked by the daemon but not installed in
the image, which would only show as "error while loading shared libraries" on the first start.

Packages listed but linked by none of the given files are reported as a note (ca-certificates is
expected there: it is data, not a library). Exit status: 0 ok, 1 missing packages, 2 usage.
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from check_manifests import apt_packages, parse_dockerfile, read_text  # noqa: E402

# In every debian:12-slim image (apt itself depends on them).
BASE_IMAGE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1"}


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def elf_files(args):
    for arg in args:
        if os.path.isdir(arg):
            for dirpath, _, files in os.walk(arg):
                for name in sorted(files):
                    path = os.path.join(dirpath, name)
                    if not os.path.islink(path) and is_elf(path):
                        yield path
        elif is_elf(arg):
            yield arg
        else:
            raise SystemExit(f"check_runtime_deps: {arg} is not an ELF file or a directory")


def dynamic_entries(path):
    """(soname or None, [needed]) from readelf -d."""
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    soname, needed = None, []
    for line in out.splitlines():
        if "(NEEDED)" in line or "(SONAME)" in line:
            value = line.split("[", 1)[1].rsplit("]", 1)[0]
            if "(NEEDED)" in line:
                needed.append(value)
            else:
                soname = value
    return soname, needed


def ldconfig_paths():
    """soname -> path for this machine's architecture (ldconfig -p)."""
    out = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    arch = "x86-64" if os.uname().machine == "x86_64" else None
    paths = {}
    for line in out.splitlines()[1:]:
        if "=>" not in line:
            continue
        left, path = line.rsplit("=>", 1)
        name = left.strip().split(" ", 1)[0]
        if arch and "(" in left and arch not in left and "libc6," in left:
            continue  # another architecture's copy
        paths.setdefault(name, path.strip())
    return paths


def owning_package(path):
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):  # usr-merge: /lib/... and /usr/lib/... are the same file
        if p.startswith("/usr/lib/"):
            candidates.append(p[len("/usr"):])
        elif p.startswith("/lib/"):
            candidates.append("/usr" + p)
    for p in candidates:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout:
            return r.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def runtime_packages(dockerfile):
    stages = parse_dockerfile(read_text(dockerfile))
    if len(stages) < 2:
        raise SystemExit("check_runtime_deps: the Dockerfile has no separate runtime stage")
    runs = " ".join(args for instr, args in stages[-1]["instructions"] if instr == "RUN")
    return set(apt_packages(runs))


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 2
    dockerfile = os.path.join(ROOT, "Dockerfile")
    if argv[0].startswith("--dockerfile="):  # another Dockerfile (for testing this script)
        dockerfile, argv = argv[0].split("=", 1)[1], argv[1:]
    listed = runtime_packages(dockerfile)
    files = list(elf_files(argv))
    if not files:
        print("check_runtime_deps: no ELF files given")
        return 2
    own = {dynamic_entries(f)[0] for f in files} | {os.path.basename(f) for f in files}
    paths = ldconfig_paths()

    missing, used, unresolved = {}, set(), []
    for f in files:
        for lib in dynamic_entries(f)[1]:
            if lib in own or lib.startswith("librillflow"):
                continue
            path = paths.get(lib)
            package = owning_package(path) if path else None
            if package is None:
                unresolved.append(f"{os.path.basename(f)}: {lib}")
                continue
            used.add(package)
            if package not in listed and package not in BASE_IMAGE_PACKAGES:
                missing.setdefault(package, set()).add(f"{os.path.basename(f)} needs {lib}")

    for item in unresolved:
        print(f"FAIL: no installed package provides {item} (is it installed here? ldconfig -p)")
    for package, why in sorted(missing.items()):
        print(f"FAIL: the Dockerfile's runtime stage does not install {package} ({'; '.join(sorted(why))})")
    unused = sorted(listed - used - {"ca-certificates"})
    if unused:
        print(f"check_runtime_deps: note: listed but linked by none of the given files: {', '.join(unused)}")
    print(f"check_runtime_deps: {len(files)} ELF files, {len(used)} packages linked: {', '.join(sorted(used))}")
    if missing or unresolved:
        return 1
    print("check_runtime_deps: the runtime stage installs every linked library")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
