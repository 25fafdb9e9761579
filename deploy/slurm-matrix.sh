#!/usr/bin/env bash
# A cowbreak matrix as a Slurm job array: task I of N runs shard I of N.
#
#   sbatch --array=0-7 deploy/slurm-matrix.sh       # from the cowbreak checkout
#   # when every task is done:
#   cargo xtask merge results/shard-* --json matrix.json --markdown matrix.md
#
# cowbreak reads SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT
# itself. A task that is preempted or hits its time limit gets SIGTERM first (see
# --signal below): it saves the cells it finished, and `sbatch --requeue` or a re-run of
# the same array index goes on from there with --resume.
#SBATCH --job-name=cowbreak-matrix
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --time=02:00:00
#SBATCH --signal=TERM@120
#SBATCH --output=results/slurm-%A_%a.out
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
out="results/shard-${SLURM_ARRAY_TASK_ID}"
mkdir -p "$out"
resume=""
if ls "$out"/matrix.shard-*.state.json >/dev/null 2>&1; then
  resume="--resume"
fi
# srun forwards the signal to cowbreak; `exec` keeps cowbreak the task's process.
exec srun cargo xtask matrix --budget 20000 --out "$out" $resume "$@"
