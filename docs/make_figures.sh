#!/usr/bin/env bash
# Regenerate the README's outputs and plots (docs/output/*.txt, docs/img/*.png): each command run
# exactly as the README shows it, with its default configuration on the simulated judge, in a scratch
# folder. Run from the repository root with penguin-gym installed; about 11 minutes on 2 cores.
set -euo pipefail
repo="$(pwd)"
work="$(mktemp -d)"
mkdir -p docs/img docs/output
run() {  # run <name> <penguin-gym args...>: stdout to docs/output/<name>.txt, then the wall time
  local name="$1"; shift
  echo "== penguin-gym $*" >&2
  local t0=$SECONDS
  (cd "$work" && penguin-gym "$@") > "$repo/docs/output/$name.txt" 2> "$work/$name.err"
  echo "(command wall time: $((SECONDS - t0)) s)" >> "$repo/docs/output/$name.txt"
}
run benchmark benchmark
run context_gap context-gap
run attributes attributes
run budget budget
run raise raise
# the guarded track, in its own runs folder (the plots below are the faithful track's), and what the
# strategies of both tracks do
run benchmark_guarded benchmark --track guarded --runs-dir guarded_runs --agents answer-now ask-all random-k static \
  greedy greedy-blind uct mcts raise-agent raise oracle
run behaviour behaviour --from "$(cd "$work" && ls -d runs/leaderboard-*)" "$(cd "$work" && ls -d guarded_runs/leaderboard-*)"
for png in leaderboard_safety frontier regret context_gap_domains context_gap_responders attribute_gain_heatmap \
           attribute_gain budget raise_domains raise_responders; do
  cp "$(ls "$work"/runs/*/"$png".png | head -n 1)" docs/img/
done
echo "outputs in docs/output, plots in docs/img; results folders in $work/runs" >&2
