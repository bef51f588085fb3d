# Shared by run.sh and subset.sh inside the test:vm guest: where things are,
# and how one step of tests runs and is recorded.
#
# A step is one test file, run by node itself rather than by `node --test`
# (whose runner is one more node process, and each costs seconds under TCG),
# with a name pattern where only some of the file's tests belong to the v2
# subset. It prints node's spec output on the console, writes its counts to
# results/<placement>-<step>.json (count-reporter.mjs) and its exit code to
# the steps file, so the host can tell a step that failed from one that
# never ran or crashed.

BRIG_VM_SHARE=/run/brig-vm
BRIG_VM_RESULTS="$BRIG_VM_SHARE/results"
BRIG_VM_STEPS="$BRIG_VM_SHARE/steps"
# One file may take this long under TCG before it is killed (node's own
# --test-timeout applies only under its runner).
BRIG_VM_FILE_TIMEOUT_S=300

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root NO_COLOR=1 FORCE_COLOR=0 TERM=dumb
# qemu runs this guest with TCG: tests may loosen what emulation slows (test/helpers/emulation.ts).
export BRIG_TEST_EMULATION=tcg

say() {
  echo "BRIG-VM: $*"
}

# step PLACEMENT NAME [node test options...] FILE
#
# A step that fails is run once more, and says so: under TCG a node process
# now and then dies from SIGSEGV with no cause found in the guest (seen in
# about a third of the runs, in a different file each time, never on the
# host). The first attempt's output stays on the console; the second one's
# counts are the step's. A failure that is Brig's fails twice.
step() {
  local placement=$1 name=$2 started=$SECONDS code attempt
  shift 2
  for attempt in 1 2; do
    if [ "$attempt" = 1 ]; then say "$placement: $name"; else say "$placement: $name, second attempt"; fi
    (cd "$BRIG_VM_REPO" && timeout --signal=KILL "$BRIG_VM_FILE_TIMEOUT_S" node --import tsx \
      --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter="$BRIG_VM_REPO/scripts/vm/guest/count-reporter.mjs" \
      --test-reporter-destination="$BRIG_VM_RESULTS/$placement-$name.json" "$@")
    code=$?
    say "$placement: $name: exit $code after $((SECONDS - started)) s"
    [ "$code" = 0 ] && break
    [ "$attempt" = 1 ] && echo "$placement $name $code" >>"$BRIG_VM_SHARE/retried"
  done
  echo "$placement $name $code" >>"$BRIG_VM_STEPS"
}
