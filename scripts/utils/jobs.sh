# shellcheck shell=bash
# shellcheck disable=SC2034  # job_* are read by the backend that sources this file
# What every job backend (utils/run_local.sh, utils/slurm.sh) shares: its arguments and its arrays.
#   <backend> [--gpu N] [--tasks N] [--max_jobs N] [NAME=a,b,c] <log> <command> [args...]
# --tasks N: the command starts N processes with srun (a cluster backend allocates N tasks on one node).
# With NAME=a,b,c the command is an array of jobs, one per element: each runs with every NAME in
# its log path and arguments replaced by that element (as Kaldi's JOB=1:N, with names), at most
# --max_jobs at once. Every job runs to its end; the backend then names the failed elements.

# parse_job_args "$@": sets job_gpus, job_tasks, job_max, job_var, job_names (array), job_log, job_command (array).
parse_job_args() {
    job_gpus=0 job_tasks=1 job_max=1 job_var='' job_names=()
    while true; do
        case "${1:-}" in
            --gpu) job_gpus=$2; shift 2 ;;
            --tasks) job_tasks=$2; shift 2 ;;
            --max_jobs) job_max=$2; shift 2 ;;
            *) break ;;
        esac
    done
    if [[ "${1:-}" =~ ^([A-Z][A-Z_]*)=(.*)$ ]]; then
        job_var=${BASH_REMATCH[1]}
        IFS=, read -r -a job_names <<< "${BASH_REMATCH[2]}"
        [ "${#job_names[@]}" -gt 0 ] || { echo "$0: the array $1 has no elements" >&2; exit 1; }
        shift
    fi
    if [ $# -lt 2 ]; then
        echo "usage: $0 [--gpu N] [--tasks N] [--max_jobs N] [NAME=a,b,...] <log> <command> [args...]" >&2
        exit 1
    fi
    [[ "${job_gpus}" =~ ^[0-9]+$ ]] || { echo "$0: --gpu must be a number, not '${job_gpus}'" >&2; exit 1; }
    [[ "${job_tasks}" =~ ^[1-9][0-9]*$ ]] || { echo "$0: --tasks must be a positive integer, not '${job_tasks}'" >&2; exit 1; }
    [[ "${job_max}" =~ ^[1-9][0-9]*$ ]] || { echo "$0: --max_jobs must be a positive integer, not '${job_max}'" >&2; exit 1; }
    job_log=$1
    shift
    job_command=("$@")
}

# report_failed_jobs <status dir>: each element's job wrote <status dir>/<element> with its exit
# status; a missing file means the job never ended (killed, or never started). Names every failed
# element with its log and returns 1 when there is one.
report_failed_jobs() {
    local dir=$1 name failed=()
    for name in "${job_names[@]}"; do
        [ "$(cat "${dir}/${name}" 2> /dev/null)" = 0 ] || failed+=("${name}")
    done
    [ "${#failed[@]}" -eq 0 ] && return 0
    echo "ERROR: ${#failed[@]} of ${#job_names[@]} jobs failed: ${failed[*]} (logs: ${job_log//${job_var}/<${job_var,,}>})" >&2
    return 1
}
