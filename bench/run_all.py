"""Run every benchmark script in bench/ and collect what they print into bench/results.json.

    python bench/run_all.py [--only audio face] [--timeout 3600] [--out bench/results.json]

Each ``bench_*.py`` beside this file (or in ``--dir``) runs in its own process, in name order, from the
repository root, with ``TF_CPP_MIN_LOG_LEVEL=3``. For each script the results record its stdout (the
figures), the last lines of its stderr, its wall-clock duration, its exit code and whether it timed out;
a failing script does not stop the others. The file also describes the machine: CPU model, cores (and
those usable by this process), memory, load average at the start, GPUs (from ``nvidia-smi``, and those
TensorFlow sees when there is one), and the Python, TensorFlow, Keras, NumPy and OpenCV versions.

``results.json`` is rewritten (atomically) after every script, so an interrupted run keeps what finished.
Exit status: 0 when every script exited 0, else 1.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STDERR_TAIL = 4000  # characters of stderr kept per script
PACKAGES = ("tensorflow", "keras", "numpy", "opencv-python-headless", "dlib-bin", "scipy", "onnxruntime")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 ** 2, 2)
    except OSError:
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024 ** 3, 2)
    except (ValueError, OSError, AttributeError):
        return None


def _nvidia_gpus() -> list[dict]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    gpus = []
    for line in out.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append({"name": parts[0], "memory": parts[1], "driver": parts[2]})
    return gpus


def _tensorflow_gpus(python: str) -> list[str] | None:
    """GPUs TensorFlow sees (a subprocess: importing TensorFlow here would slow every run down)."""
    code = "import tensorflow as tf; print('\\n'.join(d.name for d in tf.config.list_physical_devices('GPU')))"
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [ln for ln in out.stdout.splitlines() if ln.strip()] if out.returncode == 0 else None


def _versions() -> dict:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def describe_machine(python: str = sys.executable) -> dict:
    """CPU, cores, memory, load, GPUs and library versions of this machine."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        load = None
    gpus = _nvidia_gpus()
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gb": _memory_gb(),
        "load_average": load,
        "gpus": gpus,
        "tensorflow_gpus": _tensorflow_gpus(python) if gpus else [],
        "platform": platform.platform(),
        "versions": _versions(),
    }


def find_scripts(folder: Path, only=None) -> list[Path]:
    scripts = sorted(p for p in folder.glob("bench_*.py") if p.is_file())
    if only:
        scripts = [p for p in scripts if any(word in p.stem[len("bench_"):] for word in only)]
    return scripts


def run_script(script: Path, python: str, timeout: float, cwd: Path) -> dict:
    """Run one benchmark script; its stdout, stderr tail, duration, exit code and whether it timed out."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    command = [python, str(script)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=timeout,
                              cwd=cwd, env=env)
        stdout, stderr, code, timed_out = proc.stdout, proc.stderr, proc.returncode, False
    except subprocess.TimeoutExpired as e:
        def text(b):
            return b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")

        stdout, stderr, code, timed_out = text(e.stdout), text(e.stderr), None, True
    return {
        "command": [Path(python).name, str(script.relative_to(cwd)) if script.is_relative_to(cwd) else str(script)],
        "stdout": stdout,
        "stderr_tail": stderr[-STDERR_TAIL:],
        "seconds": round(time.perf_counter() - start, 3),
        "exit_code": code,
        "timed_out": timed_out,
    }


def write_json(path: Path, data: dict) -> None:
    """Write JSON to a temporary file in the same folder, then rename it onto `path`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=HERE, help="folder with the bench_*.py scripts (default: bench/)")
    parser.add_argument("--out", type=Path, default=None, help="results file (default: DIR/results.json)")
    parser.add_argument("--only", nargs="+", default=None, help="run only scripts whose name (after bench_) contains one of these")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per script (default: 3600)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the scripts (default: this one)")
    args = parser.parse_args(argv)

    folder = args.dir.resolve()
    out = (args.out or folder / "results.json").resolve()
    if not out.parent.is_dir():
        parser.error(f"output folder {out.parent} does not exist")
    scripts = find_scripts(folder, args.only)
    if not scripts:
        parser.error(f"no bench_*.py scripts in {folder}" + (f" matching {args.only}" if args.only else ""))
    cwd = folder.parent
    results = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(args.python),
        "scripts": {},
    }
    failed = 0
    for script in scripts:
        print(f"== {script.name}", flush=True)
        result = run_script(script, args.python, args.timeout, cwd)
        results["scripts"][script.name] = result
        write_json(out, results)
        sys.stdout.write(result["stdout"])
        status = "timed out" if result["timed_out"] else f"exit {result['exit_code']}"
        print(f"-- {script.name}: {status}, {result['seconds']:.1f} s", flush=True)
        failed += result["exit_code"] != 0
    results["total_seconds"] = round(sum(r["seconds"] for r in results["scripts"].values()), 3)
    write_json(out, results)
    print(f"{out}: {len(scripts) - failed}/{len(scripts)} scripts succeeded")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
