#!/usr/bin/env bash
# The "local" job backend: run a command with its output appended to a log file, fail loudly.
# Usage: utils/run_local.sh [--gpu N] <log file> <command> [args...]
# (--gpu is accepted so that the same call works with cluster backends; locally the
#  command sees whatever devices this machine has.)
#
# Each run appends a header (command, start time, host) and a footer (exit status): a re-run,
# such as a resumed training, keeps the output of the runs before it.
# The terminal stays reachable on file descriptor 3, named by ASD_CONSOLE_FD: asd_tools draws
# its progress bars there (never into the log) and copies warnings and errors there. Its
# identity (ASD_CONSOLE_ID, device:inode) lets a process tell that descriptor from an
# unrelated file that took number 3 after the descriptor was closed for it.
set -euo pipefail
if [ "${1:-}" = "--gpu" ]; then
    shift 2
fi
if [ $# -lt 2 ]; then
    echo "usage: $0 [--gpu N] <log> <command> [args...]" >&2
    exit 1
fi
log=$1
shift
mkdir -p "$(dirname "${log}")"
command=$(printf '%q ' "$@")  # quoted as the shell needs it: the header can be run again
{
    echo "# ------------------------------------------------------------------------------"
    echo "# ${command% }"
    echo "# started at $(date) on ${HOSTNAME}"
} >> "${log}"
ASD_CONSOLE_ID=$(stat -L -c '%d:%i' /dev/fd/3 3>&2 2>/dev/null || true)
export ASD_CONSOLE_FD=3 ASD_CONSOLE_ID
status=0
"$@" 3>&2 >> "${log}" 2>&1 || status=$?
echo "# ended at $(date) with status ${status}" >> "${log}"
if [ "${status}" -ne 0 ]; then
    echo "ERROR: command failed with status ${status}; last lines of ${log}:" >&2
    tail -n 30 "${log}" >&2
    exit "${status}"
fi
