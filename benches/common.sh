# Shared by the benchmark scripts (sourced, not run).

# Set BASALT_BIN to the basalt binary of cargo profile $1, building it, unless BASALT_BIN is
# already set.
basalt_binary() {
  [ -n "${BASALT_BIN:-}" ] && return 0
  cargo build --profile "$1" --bin basalt
  local target dir
  target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  dir=$1; [ "$1" = dev ] && dir=debug
  BASALT_BIN=$target/$dir/basalt
}
