"""Shared by the compare_* drivers: run a benchmark program and read its JSON line; run a
PyTorch peer script under Debian's python3-torch with the OpenMP OpenBLAS."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPENBLAS_OPENMP = "/usr/lib/x86_64-linux-gnu/openblas-openmp"


def existing_binary(path, flag):
    """The absolute path of `path`, or exit with one line when no such file exists."""
    if not os.path.isfile(path):
        sys.exit(f"error: {flag} {path}: no such file")
    return os.path.abspath(path)


def run(cmd, env=None):
    """Runs cmd in the repository root and returns its stdout; on failure, shows its stderr."""
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        proc.check_returncode()
    return proc.stdout


def run_json(cmd, env=None):
    """Runs cmd in the repository root and returns the last line of stdout that is a JSON object."""
    out = run(cmd, env)
    lines = [l for l in out.splitlines() if l.startswith("{")]
    return json.loads(lines[-1])


def run_torch_peer(script, args):
    """Runs bench/<script> with /usr/bin/python3, linked against the OpenMP OpenBLAS when present."""
    env = dict(os.environ)
    if os.path.isdir(OPENBLAS_OPENMP):
        old = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = OPENBLAS_OPENMP + (":" + old if old else "")
    return run_json(["/usr/bin/python3", os.path.join("bench", script), *args], env)
