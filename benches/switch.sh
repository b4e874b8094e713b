# Sourced by the bench scripts: builds the release binary (`$bin`) and
# starts demo switches for them to load.

cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -p clubswitch >&2
bin=$PWD/target/release/clubswitch

# start_switch DIR PORT [ARGS...]: a demo switch on data directory DIR,
# terminals on PORT, the admin API on PORT+1 and metrics on PORT+2, with
# ARGS added to `run`; its output goes to DIR/switch.out and .err. Sets
# `pid` and returns once the admin API is up.
start_switch() {
  local dir=$1 port=$2
  shift 2
  CLUBSWITCH_LOG=warn "$bin" run --demo --data-dir "$dir" "$@" \
    --listen "127.0.0.1:$port" --admin "127.0.0.1:$((port + 1))" \
    --metrics "127.0.0.1:$((port + 2))" \
    > "$dir/switch.out" 2> "$dir/switch.err" &
  pid=$!
  for _ in $(seq 100); do
    grep -q "admin API on" "$dir/switch.out" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the switch did not start; see $dir/switch.err" >&2
  return 1
}
