#!/usr/bin/env bash
# The "slurm" job backend: the same interface as utils/run_local.sh, each call one Slurm job
# (an array job for NAME=a,b,...; see utils/jobs.sh), submitted with sbatch and waited for.
# Usage: utils/slurm.sh [--gpu N] [--tasks N] [--max_jobs N] [NAME=a,b,...] <log file> <command> [args...]
# Resources come from ${slurm_conf:-conf/slurm.conf}. The job runs utils/run_local.sh on its node,
# so the log gets the same header, output and footer as a local run (the file system is shared);
# Slurm's own output (what a local run shows on the terminal: warnings, summaries, a failed job's
# last log lines; a node's errors) goes to <log dir>/slurm_jobs/ and is shown when the job ends.
# Interrupting this script cancels the job.
set -euo pipefail
# shellcheck source=utils/jobs.sh
. "$(dirname "$0")/jobs.sh"
parse_job_args "$@"
slurm_conf=${slurm_conf:-conf/slurm.conf}
[ -f "${slurm_conf}" ] || { echo "$0: ${slurm_conf} is missing (the Slurm job resources; see conf/slurm.conf)" >&2; exit 1; }
# shellcheck source=conf/slurm.conf
. "${slurm_conf}"
command -v sbatch > /dev/null || { echo "$0: sbatch not found: is this a Slurm submit host? (or export cmd_backend=local)" >&2; exit 1; }

single=false
if [ -z "${job_var}" ]; then  # a single job: an array of one, without a name to replace
    single=true job_var=ASD_NO_ARRAY job_names=(job)
fi
# the folder of the log, up to its first array name: exp/<data>/NAME/<tag>/train.log -> exp/<data>
base=${job_log%%"${job_var}"*}
[ "${single}" = true ] && base=${job_log}
dir=${base%/*}
[ "${dir}" = "${base}" ] && dir=.
dir=${dir}/${slurm_job_dir}
mkdir -p "${dir}"
name=$(basename "${job_log//${job_var}/}" .log)
stamp=$(date +%Y%m%dT%H%M%S)-$$
script=${dir}/${name}.${stamp}.sh
status_dir=${dir}/${name}.${stamp}.status
mkdir -p "${status_dir}"

options=(--parsable --job-name "asd_${name}" --output "${dir}/${name}.${stamp}.%a.out")
options+=(--array "0-$(( ${#job_names[@]} - 1 ))%${job_max}")
partition=${slurm_partition}
if [ "${job_gpus}" -gt 0 ]; then
    [ -n "${slurm_gpu_partition}" ] && partition=${slurm_gpu_partition}
    [ -n "${slurm_gres}" ] && options+=(--gres "${slurm_gres//\{n\}/${job_gpus}}")
fi
[ "${job_tasks}" -gt 1 ] && options+=(--nodes 1 --ntasks "${job_tasks}")  # for the command's srun
[ -n "${partition}" ] && options+=(--partition "${partition}")
[ -n "${slurm_cpus_per_task}" ] && options+=(--cpus-per-task "${slurm_cpus_per_task}")
[ -n "${slurm_mem}" ] && options+=(--mem "${slurm_mem}")
[ -n "${slurm_time}" ] && options+=(--time "${slurm_time}")
options+=("${slurm_extra[@]}")

# The job: pick this task's element, put it in the log and arguments, run the local backend.
{
    echo "#!/usr/bin/env bash"
    echo "# written by utils/slurm.sh: $(printf '%q ' "$@")"
    echo "cd $(printf '%q' "${PWD}")"
    echo "names=($(printf '%q ' "${job_names[@]}"))"
    echo "name=\${names[\${SLURM_ARRAY_TASK_ID:-0}]}"
    echo "export OMP_NUM_THREADS=\${OMP_NUM_THREADS:-\${SLURM_CPUS_PER_TASK:-1}}"
    echo "args=($(printf '%q ' "${job_log}" "${job_command[@]}"))"
    echo "status=0"
    echo "utils/run_local.sh \"\${args[@]//$(printf '%q' "${job_var}")/\${name}}\" || status=\$?"
    echo "echo \"\${status}\" > $(printf '%q' "${status_dir}")/\"\${name}\""
    echo "exit \"\${status}\""
} > "${script}.tmp"
mv "${script}.tmp" "${script}"

# Waits by the jobs' status files (sbatch --wait polls the controller at up to 30 s intervals, longer
# than a tiny stage): done when every element wrote one, or when the job has left the queue.
jobid=$(sbatch "${options[@]}" "${script}")
jobid=${jobid%%;*}  # --parsable: <id>[;<cluster>]
cancel() { scancel "${jobid}"; echo "$0: interrupted: Slurm job ${jobid} cancelled" >&2; exit 130; }
trap cancel INT TERM
n_done() { find "${status_dir}" -type f | wc -l; }
absent=0  # seconds in a row that squeue did not list the job (it may also fail for a moment)
while [ "$(n_done)" -lt "${#job_names[@]}" ] && [ "${absent}" -lt 5 ]; do
    if [ -n "$(squeue -h -j "${jobid}" -o %i 2> /dev/null)" ]; then absent=0; else absent=$((absent + 1)); fi
    sleep 1
done
trap - INT TERM
# what the jobs showed on their console (warnings, summaries), as a local run shows it
for i in "${!job_names[@]}"; do
    [ -s "${dir}/${name}.${stamp}.${i}.out" ] && cat "${dir}/${name}.${stamp}.${i}.out" >&2
done
report_failed_jobs "${status_dir}" 2> /dev/null && exit 0

# Each failed element (its log's last lines are in what its job showed, just above)
for i in "${!job_names[@]}"; do
    element=${job_names[$i]}
    [ "$(cat "${status_dir}/${element}" 2> /dev/null)" = 0 ] && continue
    if [ -f "${status_dir}/${element}" ]; then
        echo "ERROR: Slurm job ${jobid}_${i} failed with status $(cat "${status_dir}/${element}") (log: ${job_log//${job_var}/${element}})" >&2
    else
        echo "ERROR: Slurm job ${jobid}_${i} ended without running to its end (killed, out of time or memory?): see ${dir}/${name}.${stamp}.${i}.out" >&2
    fi
done
[ "${single}" = true ] && exit 1
report_failed_jobs "${status_dir}"
