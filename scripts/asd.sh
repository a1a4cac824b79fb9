#!/usr/bin/env bash
# The recipe of every system: the config's "system:" line picks it (serial_oe, dgmix, baseline).
# The same stages for all of them:
#   stage 0: data    the built-in synthetic set (any year's layout), or download of one year's real data
#   stage 1: dump    validate + normalise every clip -> memory-mapped arrays + manifest in <dumpdir>
#   stage 2: lists   train / valid / test lists of each machine type
#   stage 3: train   per machine type: every training phase of the system -> exp/<data>/<machine>/<tag>/
#   stage 4: embed   per machine type and checkpoint -> .../<checkpoint>/{inlier,test}.npz
#   stage 5: detect  per machine type and checkpoint -> .../<checkpoint>/scores.csv
#   stage 6: score   official score over the machine types -> exp/<data>/<set>/<tag>/<checkpoint>/score.md
#                    (<set>: "all" for every machine type, "only_<a>+<b>" for a subset)
# Each stage writes a log (its line names it) and resumes: what is current is not redone.

stage=0                # first stage to run
stop_stage=6           # last stage to run
conf=conf/tuning/asd_model.cpu.yaml  # the config; its "system:" names the system
tag=                   # experiment name (default: the config's file name)
seeds=                 # training seeds, e.g. "0 1 2": stages 3-6 once per seed into <tag>/seed<N>/, then mean ± s.d. over them (<results>/<tag>/seeds.md); data and split stay fixed
machines=              # machine types (default: every one of the data set; in training, the others are negatives)
only_machines=         # run stages 3-5 only for these machine types (default: all of --machines)
data=synthetic         # synthetic (built-in) or a year's real data: dcase2020 ... dcase2025
layout=                # synthetic data only: the year whose layout it imitates (default dcase2022)
synthetic_size=small   # tiny, small or full (synthetic data only)
synthetic_seed=0       # seed of the synthetic set
data_root=             # folder in the year's layout (default: data/<data name>)
download_dir=downloads # where real archives are kept (never deleted)
dumpdir=               # default: dump/<data name>
expdir=                # default: exp/<data name>
valid_ratio=0.15       # share of source training clips held out for validation
fold_rule=int          # folds of that split (first fold = validation): int = int(1/valid_ratio) as the original (0.15: 6 folds, 16.7 %), round = round(1/valid_ratio) (0.15: 7 folds, 14.3 %)
split_seed=0           # seed of the train/valid split
nj=1                   # machine types whose stages 3-5 run at once (locally each gets nproc/nj CPU threads unless OMP_NUM_THREADS is set; under Slurm the limit of each array job)
synthetic_jobs=2       # parallel jobs of the synthetic data generation
outlier_pool=          # external outlier exposure: a folder of WAV files, or "synthetic" (built-in sounds)
device=auto            # auto (CUDA when present), cpu, cuda, cuda:N
ngpu=1                 # processes that train each model together (stage 3): > 1 runs torchrun --nproc_per_node ngpu, one process per GPU (gloo on the CPU); they act as ngpu-fold gradient accumulation
ground_truth_dir=      # evaluator ground truth for scoring (default: <data root>/ground_truth of the dump)
figures=true           # false: scoring draws no figures (ROC, histograms, t-SNE, training curves; about half its time)
force=false            # true: redo every stage even when its record says it is current (a trained model is moved aside)
dump_conf=conf/dump.yaml  # the dump stage's settings (short_clips: warning or error)
verify=false           # true: stages 2-6 re-hash the dump's arrays against its record (always done when a size or time changed)
wait_lock=false        # true: a stage that finds another run working in its folder (dump, experiment) waits for it; false: stops, naming it

valid_stages="0-6"
help_message="Usage: $0 [options]   e.g. $0 --conf conf/tuning/baseline.yaml --machines \"fan valve\""
. utils/parse_options.sh
set -euo pipefail
. utils/log.sh
. ./path.sh
. utils/data_dirs.sh
if [[ ! "${nj}" =~ ^[1-9][0-9]*$ ]]; then echo "$0: --nj must be a positive integer, not '${nj}'" >&2; exit 1; fi
if [[ ! "${ngpu}" =~ ^[1-9][0-9]*$ ]]; then echo "$0: --ngpu must be a positive integer, not '${ngpu}'" >&2; exit 1; fi
if [[ ! "${seeds}" =~ ^[[:space:]]*([0-9]+[[:space:]]*)*$ ]]; then
    echo "$0: --seeds takes non-negative integers, e.g. --seeds \"0 1 2\", not '${seeds}'" >&2; exit 1
fi
case "${verify}" in
    true | false) ;;
    *) echo "$0: --verify must be true or false, not '${verify}'" >&2; exit 1 ;;
esac
case "${wait_lock}" in
    true | false) lock_flag=(--wait_lock "${wait_lock}") ;;
    *) echo "$0: --wait_lock must be true or false, not '${wait_lock}'" >&2; exit 1 ;;
esac
case "${fold_rule}" in
    int | round) ;;
    *) echo "$0: --fold_rule must be 'int' or 'round', not '${fold_rule}'" >&2; exit 1 ;;
esac
. ./cmd.sh
. utils/force.sh
tag=${tag:-$(basename "${conf}" .yaml)}
only_machines=${only_machines:-${machines}}
in_stages() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }
if [ "${stop_stage}" -ge 3 ] && [ ! -f "${conf}" ]; then
    echo "$0: config ${conf} does not exist (see conf/tuning/)" >&2
    exit 1
fi
if [ "${stop_stage}" -ge 3 ] && [ "${stage}" -le 5 ]; then
    python -m asd_tools.bin.check_config --config "${conf}" || exit 1  # one line, before the first stage
fi

if in_stages 0; then
    if [ "${data}" = synthetic ]; then
        log "Stage 0: built-in synthetic data (${synthetic_size}, ${layout} layout) -> ${data_root} (log: ${data_root}/make_synthetic.log)"
        ${train_cmd} "${data_root}/make_synthetic.log" python -m asd_tools.bin.make_synthetic \
            --root "${data_root}" --size "${synthetic_size}" --layout "${layout}" --machines "${machines}" \
            --seed "${synthetic_seed}" --jobs "${synthetic_jobs}"
    else
        log "Stage 0: ${data} download -> ${download_dir}, unpacked into ${data_root}"
        local/download_data.sh --data "${data}" --machines "${machines}" --download_dir "${download_dir}" \
            --data_root "${data_root}"
    fi
fi

if in_stages 1; then
    log "Stage 1: dump ${data_root} -> ${dumpdir} (log: ${dumpdir}/dump.log)"
    ${train_cmd} "${dumpdir}/dump.log" python -m asd_tools.bin.dump \
        --data_root "${data_root}" --dumpdir "${dumpdir}" --machines "${machines}" --layout "${layout}" \
        --config "${dump_conf}" "${force_flag[@]}" "${lock_flag[@]}"
    if [ -n "${outlier_pool}" ]; then
        if [ "${outlier_pool}" = synthetic ]; then
            pool_args=(--folder "${data_root}/outlier_pool" --synthetic 40)
        else
            pool_args=(--folder "${outlier_pool}")
        fi
        log "Stage 1: outlier pool -> ${dumpdir}/outlier_pool (log: ${dumpdir}/dump_pool.log)"
        ${train_cmd} "${dumpdir}/dump_pool.log" python -m asd_tools.bin.dump_pool "${pool_args[@]}" \
            --dumpdir "${dumpdir}" "${force_flag[@]}" "${lock_flag[@]}"
    fi
fi

if in_stages 2; then
    log "Stage 2: train/valid/test lists in ${dumpdir}/<machine>/lists (log: ${dumpdir}/lists.log)"
    ${train_cmd} "${dumpdir}/lists.log" python -m asd_tools.bin.make_lists \
        --dumpdir "${dumpdir}" --machines "${machines}" --valid_ratio "${valid_ratio}" --fold_rule "${fold_rule}" \
        --seed "${split_seed}" --verify "${verify}" "${force_flag[@]}" "${lock_flag[@]}"
fi

# Stages 3-5: each one job per machine type (an array job; logs train.log, embed.log, detect.log in each
# machine type's experiment folder), up to nj at once. A machine type whose stage fails is left out of
# the later stages while the others run to their end; the failed ones are named together at the end,
# each with the stage that failed.
running=()  # machine types still running (per seed): left out of later stages once one fails
failed=()   # "stage <number> (<log name>) for <machine>[ (seed N)]"
# machine_stage <number> <what> <log name> <backend> [--gpu 1] -- <command with MACHINE for the machine type>
machine_stage() {
    local number=$1 what=$2 log_name=$3 backend=$4 options=() ok=() machine
    shift 4
    while [ "$1" != -- ]; do options+=("$1"); shift; done
    shift
    in_stages "${number}" && [ "${#running[@]}" -gt 0 ] || return 0
    local logs="${expdir}/MACHINE/${run_tag}/${log_name}" sizes=()
    for machine in "${running[@]}"; do sizes+=("$(stat -c %s "${logs//MACHINE/${machine}}" 2> /dev/null || echo 0)"); done
    log "Stage ${number}: ${what} for ${running[*]} (logs: ${logs//MACHINE/<machine>})"
    ${backend} "${options[@]}" --max_jobs "${nj}" "MACHINE=$(IFS=,; echo "${running[*]}")" "${logs}" "$@" || true
    local i log_file
    for i in "${!running[@]}"; do
        machine=${running[$i]} log_file=${logs//MACHINE/${running[$i]}}
        # this run's footer (utils/run_local.sh writes it last), in what the log gained during the call
        if tail -c +$((sizes[i] + 1)) "${log_file}" 2> /dev/null | tail -n 1 | grep -q 'with status 0$'; then
            ok+=("${machine}")
        else
            failed+=("stage ${number} (${log_name%.log}) for ${machine}")
        fi
    done
    running=("${ok[@]}")
}
if [ "${stop_stage}" -ge 3 ] && [ "${stage}" -le 5 ]; then
    trainer=(python -m asd_tools.bin.train)
    # several processes per model: under Slurm srun starts them in the job's tasks; locally torchrun
    # (on one node, a free rendezvous port each, so that --nj runs do not meet)
    if [ "${ngpu}" -gt 1 ] && [ "${cmd_backend:-local}" = slurm ]; then
        trainer=(srun --kill-on-bad-exit=1 python -m asd_tools.bin.train)
    elif [ "${ngpu}" -gt 1 ]; then
        trainer=(python -m torch.distributed.run --standalone --nproc_per_node "${ngpu}" -m asd_tools.bin.train)
    fi
    # one pass per training seed (--seeds): each seed is its own experiment <tag>/seed<N>
    for seed in ${seeds:-none}; do
        run_tag=${tag} seed_flag=()
        [ "${seed}" != none ] && run_tag=${tag}/seed${seed} seed_flag=(--seed "${seed}")
        read -r -a running <<< "${only_machines}"
        seed_failed=${#failed[@]}
        machine_stage 3 "training ${run_tag}" train.log "${cuda_cmd}" --gpu "${ngpu}" --tasks "${ngpu}" -- \
            "${trainer[@]}" --config "${conf}" --dumpdir "${dumpdir}" --machine MACHINE --machines "${machines}" \
            --expdir "${expdir}/MACHINE/${run_tag}" --device "${device}" --verify "${verify}" "${seed_flag[@]}" \
            "${force_flag[@]}" "${lock_flag[@]}"
        machine_stage 4 "embeddings for every checkpoint" embed.log "${cuda_cmd}" --gpu 1 -- python -m asd_tools.bin.embed \
            --dumpdir "${dumpdir}" --machine MACHINE --expdir "${expdir}/MACHINE/${run_tag}" --device "${device}" \
            --verify "${verify}" "${force_flag[@]}" "${lock_flag[@]}"
        machine_stage 5 "detectors on every checkpoint" detect.log "${train_cmd}" -- python -m asd_tools.bin.detect \
            --dumpdir "${dumpdir}" --machine MACHINE --expdir "${expdir}/MACHINE/${run_tag}" --verify "${verify}" \
            "${force_flag[@]}" "${lock_flag[@]}"
        for ((i = seed_failed; i < ${#failed[@]}; i++)); do
            [ "${seed}" != none ] && failed[i]="${failed[i]} (seed ${seed})"
        done
    done
    if [ "${#failed[@]}" -gt 0 ]; then
        echo "$0: failed: $(printf '%s; ' "${failed[@]}" | sed 's/; $//') (see their logs above)" >&2
        exit 1
    fi
fi

if in_stages 6; then
    args=(--expdir "${expdir}" --dumpdir "${dumpdir}" --machines "${machines}" --tag "${tag}" --verify "${verify}")
    [ -n "${ground_truth_dir}" ] && args+=(--ground_truth_dir "${ground_truth_dir}")
    [ "${force}" = true ] && args+=(--force)
    [ -n "${seeds}" ] && args+=(--seeds "${seeds}")
    # The results folder depends on the machine set: asked of the scorer, which also checks the names and
    # that the experiment exists (a mistyped --tag stops here, before any results folder is made).
    results=$(python -m asd_tools.bin.score "${args[@]}" --where)
    log "Stage 6: scoring every checkpoint of ${tag}${seeds:+, seeds ${seeds}} (log: ${results}/score.log)"
    ${train_cmd} "${results}/score.log" python -m asd_tools.bin.score "${args[@]}" --figures "${figures}"
    if [ -n "${seeds}" ]; then
        log "Results: ${results}/seeds.md (mean ± s.d. over the seeds); each seed's in ${results}/seed<N>/<checkpoint>/score.md"
    else
        log "Results: ${results}/<checkpoint>/score.md; submission files in .../teams/"
    fi
fi
