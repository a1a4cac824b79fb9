# shellcheck shell=bash
# Job backends. Every heavy step of the recipes runs as
#     ${train_cmd} <log file> <command> [args...]      (CPU work)
#     ${cuda_cmd} --gpu 1 <log file> <command> [args...]  (work that uses a GPU when present)
# so that the same recipe runs locally or on a cluster. A cluster backend is a script
# with the same interface (submit, wait, write the log, return the exit status); add a
# case below and select it with: export cmd_backend=<name>.
cmd_backend=${cmd_backend:-local}
case "${cmd_backend}" in
    local)
        train_cmd="utils/run_local.sh"
        cuda_cmd="utils/run_local.sh"
        ;;
    *)
        echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (known: local)" >&2
        exit 1
        ;;
esac
export train_cmd cuda_cmd
