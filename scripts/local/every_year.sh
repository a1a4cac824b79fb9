#!/usr/bin/env bash
# One config on the built-in synthetic set in every year's layout (./asd.sh --data synthetic --layout <year>),
# one after another, then one table: the official score of every scored checkpoint and the wall time of the
# year's whole run (data generation included when the set is new). The table goes to the console and to
# exp/every_year/<tag>_<size>.md; each year's own results stay where ./asd.sh puts them.
#   e.g. local/every_year.sh --conf conf/tuning/baseline.yaml --synthetic_size small

conf=conf/tuning/baseline.yaml  # the config (any system)
years=                 # the layouts (default: every registered year)
synthetic_size=small   # tiny or small

pass_through=./asd.sh
help_message="Usage: $0 [options]   (other options go to ./asd.sh)"
. utils/parse_options.sh
set -euo pipefail
. ./path.sh
. utils/bench.sh
years=${years:-$(python -m asd_tools.bin.layout --names)}
tag=$(basename "${conf}" .yaml)
out=exp/every_year/${tag}_${synthetic_size}.md
mkdir -p exp/every_year
rows=()
for year in ${years}; do
    log=exp/every_year/${tag}_${synthetic_size}_${year}.log
    timed_run "${log}" ./asd.sh --conf "${conf}" --data synthetic --layout "${year}" \
        --synthetic_size "${synthetic_size}" "${passed_options[@]}"
    mapfile -t -O "${#rows[@]}" rows < <(score_rows "${log}" "| ${year} |" "| ${seconds} |")
    echo "${year}: ${seconds} s (log: ${log})"
done
{
    echo "# ${tag} on synthetic ${synthetic_size}, every year's layout"
    echo
    echo "Official score of each year's rule (%), post-process chosen on the development sections;"
    echo "wall time of the year's whole ./asd.sh run on $(nproc) CPU cores."
    echo
    echo "| layout | result | official score | wall time (s) |"
    echo "|---|---|---|---:|"
    printf '%s\n' "${rows[@]}"
} > "${out}.tmp"
mv "${out}.tmp" "${out}"
cat "${out}"
