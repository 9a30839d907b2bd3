# Sourced by the bench scripts, from the repository root.

# The trunkprobe binary to measure: $TRUNKPROBE_BIN as given (another build, not
# rebuilt), else this tree's release build, built now.
trunkprobe_bin() {
  if [ -n "${TRUNKPROBE_BIN:-}" ]; then
    echo "$TRUNKPROBE_BIN"
    return
  fi
  cargo build --release --quiet >&2
  echo "${CARGO_TARGET_DIR:-$PWD/target}/release/trunkprobe"
}
