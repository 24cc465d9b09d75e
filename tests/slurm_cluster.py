"""A real single-node SLURM cluster on this machine, for the cluster test: install, configure, start, stop.

Follows ../shared/notes/slurm.md: Debian's slurm-wlm and munge (installed with apt-get when missing), a
minimal slurm.conf with state, spool and logs under a temporary folder, reachable at /etc/slurm/slurm.conf
(the job step drops SLURM_CONF), slurmctld and slurmd in the foreground as child processes. Stopping kills
exactly the daemons started here, also when the test fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

CONF = Path("/etc/slurm/slurm.conf")


def why_not_possible() -> str | None:
    """Why this machine cannot run the cluster (a reason to skip), or None."""
    if os.geteuid() != 0:
        return "the SLURM daemons and munge need root, and this test runs as another user"
    if shutil.which("slurmctld") and shutil.which("munged"):
        return None
    if not shutil.which("apt-get"):
        return "slurm-wlm and munge are not installed and there is no apt-get to install them"
    return None


def ensure_installed() -> None:
    if shutil.which("slurmctld") and shutil.which("munged") and shutil.which("sbatch"):
        return
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "slurm-wlm", "munge"],
                   check=True, capture_output=True)


def _free_memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 4000


def write_conf(root: Path) -> Path:
    host = socket.gethostname().split(".")[0]
    for name in ("state", "spool", "log"):
        (root / name).mkdir(parents=True, exist_ok=True)
    conf = root / "slurm.conf"
    conf.write_text(f"""ClusterName=asaltest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
NodeName={host} CPUs={os.cpu_count()} RealMemory={int(_free_memory_mb() * 0.8)} State=UNKNOWN
PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
    return conf


@contextmanager
def single_node_slurm(root: Path):
    """Yield while a one-node cluster runs; ``root`` holds its config, state and logs."""
    ensure_installed()
    started: list[subprocess.Popen] = []
    munged_pid = None
    previous_conf = CONF.resolve() if CONF.exists() or CONF.is_symlink() else None
    moved = None
    try:
        key = Path("/etc/munge/munge.key")
        if not Path("/run/munge/munged.pid").exists():
            shutil.chown(key, "munge", "munge")
            key.chmod(0o400)
            subprocess.run(["install", "-d", "-o", "munge", "-g", "munge", "-m", "0755", "/run/munge"], check=True)
            subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True)
            munged_pid = int(Path("/run/munge/munged.pid").read_text())
        conf = write_conf(root)
        CONF.parent.mkdir(parents=True, exist_ok=True)
        if previous_conf is not None:
            moved = CONF.with_name("slurm.conf.asal-test-saved")
            CONF.rename(moved)
        CONF.symlink_to(conf)
        for daemon in ("slurmctld", "slurmd"):
            log = open(root / "log" / f"{daemon}.out", "w")
            started.append(subprocess.Popen([f"/usr/sbin/{daemon}", "-D"], stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"the SLURM node never became idle (sinfo: {state!r}); logs in {root / 'log'}")
        yield
    finally:
        for proc in reversed(started):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if munged_pid is not None:
            try:
                os.kill(munged_pid, 15)
            except ProcessLookupError:
                pass
        if CONF.is_symlink() and CONF.resolve() == (root / "slurm.conf").resolve():
            CONF.unlink()
        if moved is not None:
            moved.rename(CONF)
