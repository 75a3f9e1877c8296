#!/bin/bash
# session 15: step times of full fine-tuning and the SiLU row in separate processes, three pairs run
# one after another in alternating order (the table's round robin gave full 0.449 / 0.189 / 0.224 s
# in its three rounds: one pair per round is too noisy for a 1.5x line). 6e-3, seed 0, as the table.
# Session 17 ran it again after its bit-identical speed-up (the WERs must not move) as
# `scripts/adapt/session15_steps.sh adapt-steps17`: the argument names the runs (runs/<it>-<pair>-*).
# Since session 18 it is session18_steps.sh with three pairs (the same runs, then their summary),
# under glibc's default malloc as in sessions 15 and 17.
SEMIASR_MALLOC=system exec "$(dirname "$0")/session18_steps.sh" 3 "${1:-adapt-steps15}"
