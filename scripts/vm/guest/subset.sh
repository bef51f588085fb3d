#!/bin/bash
# The v2 subset of the integration tests, run in whatever cgroup placement
# it is started in (run.sh sets that up): usage subset.sh PLACEMENT.
#
# In every placement, what depends on where Brig's tree is: where it builds
# (placement), each verdict from the kernel's files in the slot it ran in
# (verdicts: oom_kill in memory.events, pids.max and pids.events, cpu.stat),
# the sweep after a kill -9 and a clean close (sweep), and the prepared
# sandbox's kernel paths (prepared-sandbox: init born in its cgroup by
# clone3, the tmpfs resize, the workspace's open_tree and move_mount).
#
# Once, where the placement does not change what is tested (each Brig
# process under TCG costs seconds): at the root, the program's side of the
# verdicts (limits.test.ts: memory_limit, time_limit on one process, on forks
# and on threads, the wall limit), per-run figures on a reused slot (a matter
# of the kernel's memory.peak), and `brig doctor` as a command, passing with
# every language; in the delegated cgroup, doctor's messages in cgroups that
# were not delegated. (Doctor naming a missing launcher has nothing of v2 in
# it: npm test covers it on the host.)
set -uo pipefail
. "$(dirname "$0")/lib.sh"
placement=$1

step "$placement" placement test/vm/placement.test.ts
step "$placement" verdicts test/vm/verdicts.test.ts
step "$placement" sweep test/vm/sweep.test.ts
step "$placement" prepared-sandbox test/vm/prepared-sandbox.test.ts
case "$placement" in
  root)
    step root limits --test-name-pattern='^(touching 200 MB|growing 1 MB|a CPU burn|sleeping forever)' \
      test/integration/runtime/limits.test.ts
    step root slot-reuse test/vm/slot-reuse.test.ts
    step root cli --test-name-pattern='^brig doctor checks' test/integration/cli/brig.test.ts
    ;;
  delegated)
    step delegated doctor test/vm/doctor.test.ts
    ;;
esac
