#!/usr/bin/env bash
# Helpers of the benchmark scripts in local/ (sourced): time a run whose output goes to a log, and read
# asd.sh's result lines back for a table.

# timed_run LOG COMMAND...: runs COMMAND with its output in LOG and sets `seconds` to its wall time;
# when it fails, shows the last lines of LOG and exits.
timed_run() {
    local log=$1 start
    shift
    start=$(date +%s)
    if ! "$@" > "${log}" 2>&1; then
        echo "$0: failed: $*; last lines of ${log}:" >&2
        tail -n 20 "${log}" >&2
        exit 1
    fi
    # shellcheck disable=SC2034  # read by the caller
    seconds=$(( $(date +%s) - start ))
}

# score_rows LOG BEFORE AFTER: each of asd.sh's result lines in LOG ("<... name>: official score dev D, eval E
# -> <folder>/score.md") as a table row "BEFORE name | dev D, eval E AFTER".
score_rows() {
    local line name scores
    while read -r line; do
        name=${line%%: official score*}
        scores=${line#*official score }
        echo "$2 ${name##* } | ${scores%% -> *} $3"
    done < <(grep ': official score ' "$1")
}
