#!/usr/bin/env bash
# Wall time of stages 3-6 of one config for every machine type, with the data made once: the local
# backend one machine type after another, the local backend with --nj, and (where SLURM_CONF names a
# running cluster, e.g. tools/slurm_local.sh start) the Slurm backend with --nj. Each run has its own
# experiment folder; the table (wall time, official score of each scored checkpoint) goes to the
# console and to exp/bench_backends/<tag>.md.
#   e.g. local/bench_backends.sh --conf conf/tuning/asd_model.tiny.yaml --synthetic_size tiny --nj 2

conf=conf/tuning/asd_model.tiny.yaml  # the config (any system)
synthetic_size=tiny    # the built-in synthetic set
nj=2                   # machine types at once in the parallel runs
slurm_conf=            # the Slurm jobs' resources (default: conf/slurm.conf)

pass_through=./asd.sh
help_message="Usage: $0 [options]   (other options go to ./asd.sh)"
. utils/parse_options.sh
set -euo pipefail
. utils/bench.sh
tag=$(basename "${conf}" .yaml)
root=exp/bench_backends
mkdir -p "${root}"
common=(--conf "${conf}" --synthetic_size "${synthetic_size}" --figures false "${passed_options[@]}")
./asd.sh "${common[@]}" --stop_stage 2 > "${root}/data.log" 2>&1 || { tail -n 20 "${root}/data.log" >&2; exit 1; }

runs=("local 1" "local ${nj}")
[ -n "${SLURM_CONF:-}" ] && command -v sbatch > /dev/null && runs+=("slurm ${nj}")
rows=()
for run in "${runs[@]}"; do
    read -r backend jobs <<< "${run}"
    name=${backend}_nj${jobs}
    log=${root}/${tag}_${name}.log
    rm -rf "${root:?}/${tag}_${name}"  # a fresh run: nothing up to date from before
    timed_run "${log}" env cmd_backend="${backend}" slurm_conf="${slurm_conf:-conf/slurm.conf}" ./asd.sh "${common[@]}" \
        --stage 3 --nj "${jobs}" --expdir "${root}/${tag}_${name}"
    mapfile -t -O "${#rows[@]}" rows < <(score_rows "${log}" "| ${backend} | ${jobs} |" "| ${seconds} |")
    echo "${name}: ${seconds} s (log: ${log})"
done
{
    echo "stages 3-6 of ${tag} on synthetic ${synthetic_size}, $(nproc) CPUs, $(date +%F)"
    echo
    echo "| backend | --nj | checkpoint | official score | wall time (s) |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
} > "${root}/${tag}.md.tmp"
mv "${root}/${tag}.md.tmp" "${root}/${tag}.md"
cat "${root}/${tag}.md"
