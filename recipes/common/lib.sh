# Shell helpers shared by the recipes (sourced, not run).
#   parse_options "$@"   Kaldi-style: --some-name VALUE sets $some_name, which the
#                        recipe must define first (as default); --flag (no value)
#                        sets a boolean variable whose default is false to true.
#   want_stage N         true if stage N is inside --stage .. --stop-stage.
#   log MESSAGE          timestamped line on stderr.
#   split_heldout SRC DIR NAME   first 90% of SRC's lines -> DIR/NAME.train, rest -> DIR/NAME.heldout.
#   timed_stage N CMD... runs CMD, appends "N<TAB>seconds" to $exp_dir/stage_times.tsv.

RECIPES_COMMON="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$RECIPES_COMMON/../.." && pwd)"
SHARED_DATA="$REPO/../shared/data"

log() { echo "$(date '+%H:%M:%S') [$(basename "$0")] $*" >&2; }

parse_options() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --help|-h) echo "$usage"; exit 0 ;;
      --*) ;;
      *) echo "$0: unexpected argument '$1' (options are --name value)" >&2; echo "$usage" >&2; exit 2 ;;
    esac
    local name="${1#--}"; name="${name//-/_}"
    if [ -z "${!name+set}" ]; then
      echo "$0: unknown option $1" >&2; echo "$usage" >&2; exit 2
    fi
    if [ "${!name}" = false ] || [ "${!name}" = true ]; then
      if [ $# -ge 2 ] && { [ "$2" = true ] || [ "$2" = false ]; }; then
        printf -v "$name" '%s' "$2"; shift 2
      else
        printf -v "$name" '%s' true; shift
      fi
    else
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 2; }
      printf -v "$name" '%s' "$2"; shift 2
    fi
  done
}

want_stage() { [ "$1" -ge "$stage" ] && [ "$1" -le "$stop_stage" ]; }

timed_stage() {
  local number=$1; shift
  local began; began=$(date +%s.%N)
  "$@"
  local ended; ended=$(date +%s.%N)
  mkdir -p "$exp_dir"
  local seconds; seconds=$(awk "BEGIN{printf \"%.1f\", $ended - $began}")
  printf '%s\t%s\n' "$number" "$seconds" >> "$exp_dir/stage_times.tsv"
  log "stage $number done in $seconds s"
}

split_heldout() {
  local lines; lines=$(wc -l < "$1")
  local keep=$(( lines * 9 / 10 ))
  mkdir -p "$2"
  head -n "$keep" "$1" > "$2/$3.train"
  tail -n +"$(( keep + 1 ))" "$1" > "$2/$3.heldout"
}

# Prints "cuda" if torch sees a GPU, else "cpu".
detect_device() {
  "$python" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')"
}
