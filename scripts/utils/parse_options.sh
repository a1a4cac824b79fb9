#!/usr/bin/env bash
# Parse "--name value" (or "--name=value") options into the caller's variables.
#
# Source it after defining every option variable with its default:
#     stage=0          # first stage to run
#     valid_stages="0-5"
#     . utils/parse_options.sh
# Only variables defined before this line are options; "--help" lists them with their
# defaults and the comment on their line; an unknown option is an error, and so is any
# argument that is not an option (the recipes take options only).
#
# Declarations, not options (the caller sets them before sourcing us, like help_message):
#   help_message      printed first by --help
#   valid_stages      range "A-B" of --stage and --stop_stage
#   valid_run_stages  range "A-B" of --start_stage and --end_stage (job.sh's run.sh stages)
#   pass_through      a script (e.g. ./asd.sh) that takes every option this one does not know:
#                     those go, in order, into the array passed_options instead of failing
#                     here (the other script checks them), and --help lists that script's options
# Stage options are checked here, once for every script: a typo such as "--stage 9" would
# otherwise skip every stage block and exit 0 having done nothing.

_po_script="${BASH_SOURCE[1]:-$0}"

_po_defaults() {
    # The "name=value  # comment" lines of the caller above the line that sources us.
    awk '/parse_options\.sh/ {exit}
         /^(help_message|valid_stages|valid_run_stages|pass_through)=/ {next}
         /^[A-Za-z_][A-Za-z0-9_]*=/ {print}' "${_po_script}"
}

_po_is_option() {
    _po_defaults | grep -q "^$1="
}

_po_help() {
    [ -n "${help_message:-}" ] && echo "${help_message}"
    echo "Options (default in brackets):"
    _po_defaults | while IFS= read -r line; do
        name=${line%%=*}
        rest=${line#*=}
        value=${rest%%#*}
        value=$(echo "${value}" | sed -e 's/[[:space:]]*$//' -e 's/^"\(.*\)"$/\1/')
        comment=""
        [[ "${rest}" == *"#"* ]] && comment=${rest#*#}
        printf "  --%-22s [%s] %s\n" "${name}" "${value}" "${comment# }"
    done
    [ -n "${valid_stages:-}" ] && echo "Stages (--stage, --stop_stage): ${valid_stages}"
    [ -n "${valid_run_stages:-}" ] && echo "Run stages (--start_stage, --end_stage): ${valid_run_stages}"
    if [ -n "${pass_through:-}" ]; then
        echo "Every other option goes to ${pass_through}:"
        "${pass_through}" --help | sed -n '/^  --/p' | grep -v -E "^  --($(_po_defaults | cut -d= -f1 | paste -sd'|'))[[:space:]]"
    fi
    return 0
}

_po_check_stages() {
    # _po_check_stages <range> <what> <first option> <last option>: each option the script has
    # must be an integer in <range>, and the last must not come before the first.
    local range=$1 what=$2 name value
    for name in "$3" "$4"; do
        _po_is_option "${name}" || continue
        if [[ ! "${range}" =~ ^[0-9]+-[0-9]+$ ]]; then
            echo "$0: has --${name} but declares no valid range of ${what}s (e.g. valid_stages=\"0-5\")" >&2
            exit 1
        fi
        value=${!name}
        if [[ ! "${value}" =~ ^[0-9]{1,9}$ ]] || ((10#${value} < ${range%-*} || 10#${value} > ${range#*-})); then
            echo "$0: --${name} $(printf '%q' "${value}") is not a ${what} of this script (valid: ${range})" >&2
            exit 1
        fi
        printf -v "${name}" '%d' "$((10#${value}))"  # "03" -> "3": later arithmetic would read it as octal
    done
    if _po_is_option "$3" && _po_is_option "$4" && ((${!4} < ${!3})); then
        echo "$0: --$4 ${!4} comes before --$3 ${!3}: no ${what} would run" >&2
        exit 1
    fi
}

passed_options=()
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            _po_help
            exit 0
            ;;
        --*=*)
            _po_name=${1%%=*}; _po_name=${_po_name#--}; _po_value=${1#*=}; shift
            ;;
        --*)
            _po_name=${1#--}
            if [ $# -lt 2 ]; then
                echo "$0: option --${_po_name} needs a value" >&2
                exit 1
            fi
            _po_value=$2; shift 2
            ;;
        *)
            break
            ;;
    esac
    _po_name=${_po_name//-/_}
    if [ -n "${pass_through:-}" ] && ! _po_is_option "${_po_name}"; then
        passed_options+=("--${_po_name}" "${_po_value}")
        continue
    fi
    if ! _po_is_option "${_po_name}"; then
        echo "$0: unknown option --${_po_name} (see $0 --help)" >&2
        exit 1
    fi
    printf -v "${_po_name}" '%s' "${_po_value}"
done
unset _po_name _po_value
if [ $# -ne 0 ]; then echo "$0: unexpected arguments: $*" >&2; exit 1; fi
_po_check_stages "${valid_stages:-}" stage stage stop_stage
_po_check_stages "${valid_run_stages:-}" "run stage" start_stage end_stage
