"""bench/run_all.py: runs each bench_*.py, records stdout, duration, exit code and the machine."""

import json
import subprocess
import sys
from pathlib import Path

RUN_ALL = Path(__file__).resolve().parents[2] / "bench" / "run_all.py"


def test_run_all_collects_every_script(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "bench_ok.py").write_text("print('frames/s: 123.4')\n")
    (bench / "bench_fail.py").write_text("import sys\nprint('partial')\nsys.stderr.write('boom\\n')\nsys.exit(3)\n")
    (bench / "bench_slow.py").write_text("import time\nprint('start', flush=True)\ntime.sleep(30)\n")
    (bench / "helper.py").write_text("raise SystemExit('not a benchmark')\n")
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, str(RUN_ALL), "--dir", str(bench), "--out", str(out), "--timeout", "3"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr  # one script failed
    assert "frames/s: 123.4" in proc.stdout and "2/3" not in proc.stdout and "1/3 scripts succeeded" in proc.stdout
    results = json.loads(out.read_text())
    scripts = results["scripts"]
    assert sorted(scripts) == ["bench_fail.py", "bench_ok.py", "bench_slow.py"]
    ok, fail, slow = scripts["bench_ok.py"], scripts["bench_fail.py"], scripts["bench_slow.py"]
    assert ok["stdout"] == "frames/s: 123.4\n" and ok["exit_code"] == 0 and not ok["timed_out"]
    assert 0 < ok["seconds"] < 60
    assert fail["exit_code"] == 3 and fail["stdout"] == "partial\n" and "boom" in fail["stderr_tail"]
    assert slow["timed_out"] and slow["exit_code"] is None and 2.5 < slow["seconds"] < 30
    machine = results["machine"]
    for key in ("cpu_model", "cores", "usable_cores", "memory_gb", "gpus", "platform", "versions"):
        assert key in machine
    assert machine["cores"] >= 1 and machine["memory_gb"] > 0
    assert machine["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert machine["versions"]["tensorflow"].startswith("2.") and machine["versions"]["numpy"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_run_all_only_and_no_scripts(tmp_path):
    (tmp_path / "bench_a.py").write_text("print('a')\n")
    (tmp_path / "bench_b.py").write_text("print('b')\n")
    proc = subprocess.run([sys.executable, str(RUN_ALL), "--dir", str(tmp_path), "--only", "b"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert list(json.loads((tmp_path / "results.json").read_text())["scripts"]) == ["bench_b.py"]
    proc = subprocess.run([sys.executable, str(RUN_ALL), "--dir", str(tmp_path), "--only", "zzz"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no bench_*.py" in proc.stderr
