# shellcheck shell=bash
# Job backends. Every heavy step of the recipes runs as
#     ${train_cmd} <log file> <command> [args...]          (CPU work)
#     ${cuda_cmd} --gpu 1 <log file> <command> [args...]   (work that uses a GPU when present)
# or, for one job per machine type (an array job; see utils/jobs.sh),
#     ${cuda_cmd} --gpu 1 --max_jobs N MACHINE=fan,valve exp/MACHINE/train.log <command> --machine MACHINE
# so that the same recipe runs locally or on a cluster. Select one with: export cmd_backend=<name>
#   local  this machine (default)
#   slurm  one sbatch job per call, resources from conf/slurm.conf (or ${slurm_conf})
# A new backend is a script with the same interface (submit, wait, write the log, return the
# exit status, name the failed elements of an array); add a case below.
cmd_backend=${cmd_backend:-local}
case "${cmd_backend}" in
    local)
        train_cmd="utils/run_local.sh"
        cuda_cmd="utils/run_local.sh"
        ;;
    slurm)
        train_cmd="utils/slurm.sh"
        cuda_cmd="utils/slurm.sh"
        ;;
    *)
        echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (known: local, slurm)" >&2
        exit 1
        ;;
esac
export train_cmd cuda_cmd
