# shellcheck shell=bash
# Activate the recipe's environment (built by "cd tools && make").
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ ! -f "${_root}/tools/venv/bin/activate" ]; then
    echo "path.sh: ${_root}/tools/venv is missing: run 'cd ${_root}/tools && make' first" >&2
    # shellcheck disable=SC2317  # exit only runs when the file is executed, not sourced
    return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "${_root}/tools/venv/bin/activate"
export PYTHONUNBUFFERED=1
export PYTHONPATH="${_root}${PYTHONPATH:+:${PYTHONPATH}}"
export LC_ALL=C.UTF-8
unset _root
