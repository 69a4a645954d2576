#!/usr/bin/env bash
# Install what the single-node test cluster needs (Debian 12, as root): Slurm 22.05, munge,
# slurmdbd with MariaDB for sacct. Idempotent: packages already present are left alone.
set -euo pipefail
packages=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "slurm: $(slurmctld -V)"
