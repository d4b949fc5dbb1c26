#!/bin/bash
# Interleaved timings: attrs, generated 20,800-case suite, 100k-case file.
B=${B:-/work/wt-serve/target/release/cargo-paratest}
V=/tmp/serve-bench/venv
export VIRTUAL_ENV=$V PATH=$V/bin:$PATH
t() { local s=$(date +%s.%N); "$@" > /dev/null 2>&1; local rc=$?; local e=$(date +%s.%N); echo "$(echo "$e - $s" | bc) rc=$rc"; }
PY="$V/bin/python -m pytest -q -p no:cacheprovider"
suite=$1; reps=${2:-3}
case $suite in
attrs)
  cd /tmp/serve-bench/attrs-26.1.0
  $B paratest --plugin pytest -j 2 >/dev/null 2>&1  # warm-up: timings, pycache
  for i in $(seq $reps); do
    echo "xdist $(t $PY -n 2)"
    echo "plain $(t $PY)"
    rm -rf .paratest; echo "cold $(t $B paratest --plugin pytest -j 2)"
    echo "warm $(t $B paratest --plugin pytest -j 2)"
  done;;
gen)
  cd /tmp/serve-bench/gen
  $B paratest --plugin pytest -j 2 >/dev/null 2>&1
  for i in $(seq $reps); do
    echo "xdist $(PYTHONHASHSEED=0 t $PY -n 2)"
    echo "warm $(t $B paratest --plugin pytest -j 2)"
  done;;
big)
  cd /tmp/serve-bench/big
  $B paratest --plugin pytest -j 1 >/dev/null 2>&1
  for i in $(seq $reps); do
    echo "plain $(t $PY)"
    echo "paratest-j1 $(t $B paratest --plugin pytest -j 1)"
  done;;
esac
