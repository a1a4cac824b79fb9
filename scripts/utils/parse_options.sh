#!/usr/bin/env bash
# Parse "--name value" (or "--name=value") options into the caller's variables.
#
# Source it after defining every option variable with its default:
#     stage=0          # first stage to run
#     . utils/parse_options.sh
# Only variables defined before this line are options; "--help" lists them with their
# defaults and the comment on their line; an unknown option is an error, and so is any
# argument that is not an option (the recipes take options only).

_po_script="${BASH_SOURCE[1]:-$0}"

_po_defaults() {
    # The "name=value  # comment" lines of the caller above the line that sources us.
    awk '/parse_options\.sh/ {exit} /^[A-Za-z_][A-Za-z0-9_]*=/ {print}' "${_po_script}"
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
}

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
    if ! _po_defaults | grep -q "^${_po_name}="; then
        echo "$0: unknown option --${_po_name} (see $0 --help)" >&2
        exit 1
    fi
    printf -v "${_po_name}" '%s' "${_po_value}"
done
unset _po_name _po_value
if [ $# -ne 0 ]; then echo "$0: unexpected arguments: $*" >&2; exit 1; fi
