#!/usr/bin/env bash
# The "local" job backend: run a command with its output appended to a log file, fail loudly.
# Usage: utils/run_local.sh [--gpu N] [--tasks N] [--max_jobs N] [NAME=a,b,...] <log file> <command> [args...]
# (--gpu and --tasks are accepted so that the same call works with cluster backends; locally the
#  command sees whatever devices this machine has. NAME=a,b,...: an array of jobs, see utils/jobs.sh;
#  with --max_jobs N > 1 each job gets nproc/N CPU threads unless OMP_NUM_THREADS is set.)
#
# Each run appends a header (command, start time, host) and a footer (exit status): a re-run,
# such as a resumed training, keeps the output of the runs before it.
# The terminal stays reachable on file descriptor 3, named by ASD_CONSOLE_FD: asd_tools draws
# its progress bars there (never into the log) and copies warnings and errors there. Its
# identity (ASD_CONSOLE_ID, device:inode) lets a process tell that descriptor from an
# unrelated file that took number 3 after the descriptor was closed for it.
set -euo pipefail
# shellcheck source=utils/jobs.sh
. "$(dirname "$0")/jobs.sh"
parse_job_args "$@"

if [ -n "${job_var}" ]; then
    if [ "${job_max}" -gt 1 ]; then
        export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / job_max > 0 ? $(nproc) / job_max : 1 ))}
    fi
    status_dir=$(mktemp -d)
    trap 'rm -rf "${status_dir}"' EXIT
    # Each job runs in a session of its own (setsid) and writes its exit status itself (ASD_JOB_STATUS).
    # A background job of a script ignores Ctrl-C, so an interrupt stops each job whole here (TERM to its
    # process group) and the folder goes only after they have ended: else they would go on working and
    # then fail to write into the removed folder ("<folder>/<name>: No such file or directory").
    # shellcheck disable=SC2329  # called by the traps below
    stop_jobs() {
        local pid
        for pid in $(jobs -p); do kill -TERM -- "-${pid}" 2> /dev/null || true; done
        wait
        exit "$1"
    }
    trap 'stop_jobs 130' INT
    trap 'stop_jobs 143' TERM
    for name in "${job_names[@]}"; do
        while [ "$(jobs -rp | wc -l)" -ge "${job_max}" ]; do wait -n || true; done
        ASD_JOB_STATUS="${status_dir}/${name}" setsid "$0" "${job_log//${job_var}/${name}}" \
            "${job_command[@]//${job_var}/${name}}" &
    done
    wait
    report_failed_jobs "${status_dir}"
    exit
fi

status_file=${ASD_JOB_STATUS:-}  # set by the array above for each of its jobs; not for the command
unset ASD_JOB_STATUS
mkdir -p "$(dirname "${job_log}")"
command=$(printf '%q ' "${job_command[@]}")  # quoted as the shell needs it: the header can be run again
{
    echo "# ------------------------------------------------------------------------------"
    echo "# ${command% }"
    echo "# started at $(date) on ${HOSTNAME}"
} >> "${job_log}"
ASD_CONSOLE_ID=$(stat -L -c '%d:%i' /dev/fd/3 3>&2 2>/dev/null || true)
export ASD_CONSOLE_FD=3 ASD_CONSOLE_ID
status=0
"${job_command[@]}" 3>&2 >> "${job_log}" 2>&1 || status=$?
echo "# ended at $(date) with status ${status}" >> "${job_log}"
[ -z "${status_file}" ] || echo "${status}" > "${status_file}"
if [ "${status}" -ne 0 ]; then
    echo "ERROR: command failed with status ${status}; last lines of ${job_log}:" >&2
    tail -n 30 "${job_log}" >&2
    exit "${status}"
fi
