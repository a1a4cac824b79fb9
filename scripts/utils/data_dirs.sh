# shellcheck shell=bash
# shellcheck disable=SC2154  # data, layout, synthetic_size and machines are the caller's options
# Derive the data-dependent settings from ${data}, ${layout} and ${synthetic_size} (sourced after
# parse_options.sh and path.sh). Each data set gets its own data/, dump/ and exp/ sub-folder, so
# that the synthetic demo, other synthetic layouts and every real year never mix.
known_data=$(python -m asd_tools.bin.layout --names)
case "${data}" in
    synthetic)
        layout=${layout:-dcase2022}
        # the DCASE 2022 layout keeps its historical folder name (the README's figures live there)
        if [ "${layout}" = dcase2022 ]; then
            data_name="synthetic_${synthetic_size}"
        else
            data_name="synthetic_${layout}_${synthetic_size}"
        fi
        ;;
    *)
        if ! grep -qw -- "${data}" <<< "${known_data}"; then
            echo "$0: --data must be 'synthetic' or one of: ${known_data}; not '${data}'" >&2
            exit 1
        fi
        if [ -n "${layout}" ] && [ "${layout}" != "${data}" ]; then
            echo "$0: --layout ${layout} is for --data synthetic; real data has its own year's layout" >&2
            exit 1
        fi
        layout=${data}
        data_name=${data}
        ;;
esac
if ! grep -qw -- "${layout}" <<< "${known_data}"; then
    echo "$0: --layout must be one of: ${known_data}; not '${layout}'" >&2
    exit 1
fi
# every machine type of the year unless --machines names some (checked here: one line, before any stage)
if [ -n "${machines}" ]; then
    python -m asd_tools.bin.layout --layout "${layout}" --check "${machines}" || exit 1
fi
machines=${machines:-$(python -m asd_tools.bin.layout --layout "${layout}" --machines)}
data_root=${data_root:-data/${data_name}}
dumpdir=${dumpdir:-dump/${data_name}}
expdir=${expdir:-exp/${data_name}}
