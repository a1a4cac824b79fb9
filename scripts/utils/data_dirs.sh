# shellcheck shell=bash
# shellcheck disable=SC2154  # data and synthetic_size are the caller's options
# Derive the data-dependent folders from ${data} and ${synthetic_size} (sourced after
# parse_options.sh). Each data set gets its own data/, dump/ and exp/ sub-folder, so that
# the synthetic demo and the real data never mix.
case "${data}" in
    synthetic) data_name="synthetic_${synthetic_size}" ;;
    dcase2022) data_name="dcase2022" ;;
    *) echo "$0: --data must be 'synthetic' or 'dcase2022', not '${data}'" >&2; exit 1 ;;
esac
data_root=${data_root:-data/${data_name}}
dumpdir=${dumpdir:-dump/${data_name}}
expdir=${expdir:-exp/${data_name}}
