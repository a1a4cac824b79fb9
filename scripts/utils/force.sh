# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154  # force is the caller's option; force_flag is read by the caller
# --force true|false -> "${force_flag[@]}" for the Python stages (sourced after parse_options.sh).
# Without it, every stage compares its provenance record with today's inputs and settings and
# recomputes only what is stale; training stops instead of retraining (see README: staleness).
case "${force}" in
    true) force_flag=(--force) ;;
    false) force_flag=() ;;
    *) echo "$0: --force must be true or false, not '${force}'" >&2; exit 1 ;;
esac
