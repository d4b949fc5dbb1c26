#!/bin/bash
# attrs: xdist, serve and a `persistent = false` copy (/tmp/sp/attrs-np, made by hand: cp -a the tree, rm -rf .paratest, paratest.toml with [plugin.pytest] persistent = false), interleaved; wall, user, sys.
B=${B:-/work/wt-serve/target/release/cargo-paratest}
V=/tmp/serve-bench/venv
export VIRTUAL_ENV=$V PATH=$V/bin:$PATH
T() { /usr/bin/time -f "$1 %e s user %U sys %S" "${@:2}" >/dev/null 2>/tmp/sp/err; tail -1 /tmp/sp/err; }
A=/tmp/serve-bench/attrs-26.1.0; N=/tmp/sp/attrs-np
(cd $N && $B paratest --plugin pytest -j 2 >/dev/null 2>&1)
for i in $(seq ${1:-2}); do
 (cd $A && T xdist python -m pytest -q -p no:cacheprovider -n 2)
 (cd $A && T serve $B paratest --plugin pytest -j 2)
 (cd $N && T perfile $B paratest --plugin pytest -j 2)
done
