#!/usr/bin/env bash
# The GPU check: the CUDA paths of the recipe (bf16 autocast, the front end on the GPU, pinned batches, NCCL)
# run once on tiny synthetic data, within about 8 minutes on one H100-class GPU, and one summary table.
#   step 0  the tiny synthetic set (fan, valve; stages 0-2), shared by steps 1, 2, 4 and 5
#   step 1  every registered system's tiny recipe end to end on CUDA (each config's autocast setting):
#           scores finite, submission files complete (asd_tools/bin/gpu_check.py check-recipe)
#   step 2  tiny System 1 in fp32 (no autocast, no dropout, TF32 off) on the CPU and on CUDA: official
#           scores within gpu_check.py's FP32_TOLERANCE_POINTS
#   step 3  bin/benchmark, config 000 on the synthetic small set: model-only vs full step rate (the
#           loader's share), embedding windows/s, peak GPU memory
#   step 4  DG-Mix's original batch (2048 = 2 x 1024): peak GPU memory with grad_accum 1 and 4
#   step 5  tiny System 1 with --ngpu 2 (NCCL) when two GPUs are visible; else a "skipped: 1 GPU" row
# Each step runs under its time limit; a failing step is recorded FAIL with its log and the next one runs;
# the script exits 1 when any step failed. Summary: printed, and <outdir>/summary.md, <outdir>/summary.tsv.
set -euo pipefail

usage() {
    cat << EOF
Usage: $0 [--dry-run] [--outdir DIR] [--steps 1,2,3,4,5]
  --dry-run      print each step's commands and the summary table's header; run nothing (no GPU needed)
  --outdir DIR   data, experiments, logs and the summary (default: exp/gpu_check; replaced step by step)
  --steps LIST   comma-separated steps to run, of 1-5 (default: all); step 0 (the tiny data) runs when a
                 step that needs it does
  --help         this message
EOF
}

dry_run=false
outdir=exp/gpu_check
steps=1,2,3,4,5
while [ $# -gt 0 ]; do
    case "$1" in
        --help | -h) usage; exit 0 ;;
        --dry-run) dry_run=true; shift ;;
        --outdir | --steps)
            if [ $# -lt 2 ] || [ -z "$2" ]; then echo "$0: $1 needs a value (see --help)" >&2; exit 2; fi
            if [ "$1" = --outdir ]; then outdir=$2; else steps=$2; fi
            shift 2 ;;
        *) echo "$0: unknown option '$1' (options: --dry-run, --outdir DIR, --steps LIST, --help)" >&2; exit 2 ;;
    esac
done
if [[ ! "${steps}" =~ ^[1-5](,[1-5])*$ ]]; then
    echo "$0: --steps takes step numbers 1-5 separated by commas, e.g. --steps 1,3, not '${steps}'" >&2
    exit 2
fi

# Time limits (seconds) of the steps: 8 minutes in all on one GPU, where step 5 is skipped; step 5 adds its own
# on two. Estimates: the check has not run on a GPU yet.
limit_data=30
limit_recipe=52        # each system's tiny recipe in step 1 (four systems)
limit_fp32=120         # a tiny recipe on the CPU, then on CUDA
limit_benchmark=80
limit_dgmix_memory=40
limit_ngpu=60

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
outdir=$(realpath -m "${outdir}")  # before the cd below; created by the first step, not by --dry-run
cd "${root}/scripts"
# shellcheck source=../scripts/path.sh
. ./path.sh
check=(python -m asd_tools.bin.gpu_check)
machines="fan valve"
tiny_data=(--synthetic_size tiny --machines "${machines}" --data_root "${outdir}/data_tiny" --dumpdir "${outdir}/dump_tiny")
logs=${outdir}/logs
tsv=${outdir}/summary.tsv
failed=0

selected() { [[ ",${steps}," == *",$1,"* ]]; }

# run_cmd [--out FILE | --result] <command...>: run one command of the current step, killed at the step's
# deadline; its output is appended to the step's log (--out: to FILE; --result: its standard output, a
# check's one line, also kept in ${check_result}). With --dry-run it only prints the command.
run_cmd() {
    local out=${step_log} keep=false status=0
    case "$1" in
        --out) out=$2; shift 2 ;;
        --result) keep=true; shift ;;
    esac
    check_result=
    if [ "${dry_run}" = true ]; then
        printf '    $'; printf ' %q' "$@"; [ "${out}" != "${step_log}" ] && printf ' > %q' "${out}"; echo
        return 0
    fi
    local left=$((deadline - SECONDS))
    last_out=${out} last_cmd="$*"  # what a failure's row names
    if [ "${left}" -le 0 ]; then echo "time limit reached before: $*" >> "${step_log}"; return 124; fi
    [ "${out}" != "${step_log}" ] && echo "output of '$*' -> ${out}" >> "${step_log}"
    if [ "${keep}" = true ]; then
        timeout --kill-after 10 "${left}" "$@" > "${step_log}.result" 2>> "${step_log}" || status=$?
        check_result=$(cat "${step_log}.result")
        cat "${step_log}.result" >> "${step_log}" && rm -f "${step_log}.result"
        return "${status}"
    fi
    timeout --kill-after 10 "${left}" "$@" >> "${out}" 2>&1
}

# begin <step> <check> <limit>: start a step (its log, its deadline); finish <status> <result>: record its row
begin() {
    step=$1 check_name=$2 limit=$3
    step_log=${logs}/step${step}_${check_name}.log started=${SECONDS} deadline=$((SECONDS + limit))
    last_out=${step_log}
    if [ "${dry_run}" = true ]; then
        echo "step ${step} ${check_name} (limit ${limit} s, log ${step_log}):"
    else
        mkdir -p "${logs}"
        : > "${step_log}"
        echo "step ${step} ${check_name} (limit ${limit} s) ..."
    fi
}
finish() {
    local status=$1 result=$2
    [ "${dry_run}" = true ] && return 0
    if [ "${status}" = FAIL ]; then
        failed=1
        [ $((SECONDS - started)) -ge "${limit}" ] && result="timed out after ${limit} s in: ${last_cmd:0:200}"
    fi
    "${check[@]}" record --tsv "${tsv}" --step "${step}" --check "${check_name}" --status "${status}" \
        --seconds "$((SECONDS - started))" --result "${result}" --log "${step_log}"
    echo "  ${status}: ${result}"
}
# the last line of the failed command's output: the result cell of its step's FAIL row
failure() { echo "${1:-failed}: $(tail -n 1 "${last_out}" 2> /dev/null | cut -c1-300)"; }

step_data() {
    begin 0 tiny_data "${limit_data}"
    if run_cmd ./asd.sh --conf conf/tuning/baseline.yaml --stage 0 --stop_stage 2 "${tiny_data[@]}" \
        --expdir "${outdir}/exp_cuda"; then
        finish PASS "tiny synthetic set of ${machines}: ${outdir}/dump_tiny"
    else
        finish FAIL "$(failure)"
    fi
}

step_recipes() {
    local system wrapper config precision tag plan
    if ! plan=$("${check[@]}" tiny-recipes); then  # a registered system without a tiny recipe
        begin 1 plan 1
        if [ "${dry_run}" = true ]; then echo "    plan failed: ${plan}"; failed=1; fi
        finish FAIL "${plan}"
        return
    fi
    while IFS=$'\t' read -r system wrapper config precision; do
        tag=$(basename "${config}" .yaml)
        begin 1 "${system}" "${limit_recipe}"
        if run_cmd "./${wrapper}" --conf "${config}" --device cuda "${tiny_data[@]}" --expdir "${outdir}/exp_cuda" \
            --figures false &&
            run_cmd --result "${check[@]}" check-recipe --expdir "${outdir}/exp_cuda" --dumpdir "${outdir}/dump_tiny" \
                --machines "${machines}" --tag "${tag}"; then
            finish PASS "${precision}; ${check_result}"
        else
            finish FAIL "$(failure "${precision}")"
        fi
    done <<< "${plan}"
}

step_fp32() {
    local config=${outdir}/conf/asd_model.tiny_fp32.yaml device
    begin 2 fp32_cpu_vs_cuda "${limit_fp32}"
    run_cmd "${check[@]}" fp32-config --config conf/tuning/asd_model.tiny.yaml --out "${config}" ||
        { finish FAIL "$(failure "fp32 config")"; return; }
    for device in cpu cuda; do
        # NVIDIA_TF32_OVERRIDE=0: cuDNN convolutions run in TF32 by default on Ampere and later, which is not fp32
        run_cmd env NVIDIA_TF32_OVERRIDE=0 ./job.sh --conf "${config}" --device "${device}" "${tiny_data[@]}" \
            --expdir "${outdir}/exp_fp32_${device}" --figures false || { finish FAIL "$(failure "${device} run")"; return; }
    done
    if run_cmd --result "${check[@]}" compare --cpu "${outdir}/exp_fp32_cpu" --cuda "${outdir}/exp_fp32_cuda" \
        --dumpdir "${outdir}/dump_tiny" --machines "${machines}" --tag asd_model.tiny_fp32; then
        finish PASS "${check_result}"
    else
        finish FAIL "$(failure)"
    fi
}

step_benchmark() {
    local figures=${logs}/step3_benchmark_figures.txt
    begin 3 benchmark_000 "${limit_benchmark}"
    if run_cmd ./asd.sh --conf conf/tuning/baseline.yaml --stage 0 --stop_stage 2 --synthetic_size small \
        --synthetic_jobs 8 --machines "${machines}" --data_root "${outdir}/data_small" \
        --dumpdir "${outdir}/dump_small" --expdir "${outdir}/exp_cuda" &&
        run_cmd --out "${figures}" python -m asd_tools.bin.benchmark --config conf/tuning/asd_model.000.yaml \
            --dumpdir "${outdir}/dump_small" --machine fan --machines "${machines}" --device cuda --steps 20 \
            --embed_clips 100 &&
        run_cmd --result "${check[@]}" benchmark-summary --kind serial_oe --log "${figures}"; then
        finish PASS "config 000, batch 128, synthetic small fan: ${check_result}"
    else
        finish FAIL "$(failure)"
    fi
}

step_dgmix_memory() {
    local accum outs=()
    begin 4 dgmix_memory "${limit_dgmix_memory}"
    for accum in 1 4; do
        outs+=("${logs}/step4_grad_accum${accum}.txt")
        # an out-of-memory run is a result (the summary says so), not a failure of the step
        run_cmd --out "${outs[-1]}" python -m asd_tools.bin.benchmark --config conf/tuning/dgmix.original.yaml \
            --dumpdir "${outdir}/dump_tiny" --machine fan --machines "${machines}" --device cuda --steps 1 \
            --grad_accum "${accum}" || true
    done
    if run_cmd --result "${check[@]}" benchmark-summary --kind dgmix_memory --log "${outs[@]}"; then
        finish PASS "dgmix.original pre-training: ${check_result}"
    else
        finish FAIL "$(failure)"
    fi
}

step_ngpu() {
    local config=conf/tuning/asd_model.tiny.yaml tag=asd_model.tiny_ngpu2
    begin 5 ngpu2_nccl "${limit_ngpu}"
    if [ "${dry_run}" = true ]; then
        echo "    (runs only when two GPUs are visible; otherwise the row says skipped: 1 GPU)"
    elif [ "${gpu_count}" -lt 2 ]; then
        finish SKIP "skipped: ${gpu_count} GPU"
        return
    fi
    if run_cmd ./job.sh --conf "${config}" --tag "${tag}" --ngpu 2 --device cuda "${tiny_data[@]}" \
        --expdir "${outdir}/exp_cuda" --figures false &&
        run_cmd --result "${check[@]}" check-recipe --expdir "${outdir}/exp_cuda" --dumpdir "${outdir}/dump_tiny" \
            --machines "${machines}" --tag "${tag}"; then
        finish PASS "2 processes (torchrun, NCCL): ${check_result}"
    else
        finish FAIL "$(failure)"
    fi
}

if [ "${dry_run}" = true ]; then
    echo "GPU check plan (dry run; nothing is run), outdir ${outdir}:"
else
    if ! devices=$("${check[@]}" devices); then
        echo "$0: ${devices}" >&2
        exit 1
    fi
    gpu_count=${devices%% *}
    mkdir -p "${outdir}"
    rm -rf "${tsv}" "${logs}"  # this run's rows and logs only (data and experiments are kept and reused)
    echo "GPU check on ${devices#* }, outdir ${outdir}"
fi
if selected 1 || selected 2 || selected 4 || selected 5; then step_data; fi
if selected 1; then step_recipes; fi
if selected 2; then step_fp32; fi
if selected 3; then step_benchmark; fi
if selected 4; then step_dgmix_memory; fi
if selected 5; then step_ngpu; fi

if [ "${dry_run}" = true ]; then
    echo "summary (${outdir}/summary.md, ${outdir}/summary.tsv):"
    "${check[@]}" table --header
    exit "${failed}"
fi
commit=$(git -C "${root}" rev-parse --short HEAD 2> /dev/null || echo unknown)
"${check[@]}" table --tsv "${tsv}" --out "${outdir}/summary.md" --title "${devices#* }, commit ${commit}, $(date -u +%F)"
exit "${failed}"
