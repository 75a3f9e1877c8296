#!/bin/bash
# session 20, exploratory diagnostics beside the screen (session20_screen.sh); never candidates for
# issue 7's adapters goal. "blocks": full fine-tuning with the front end frozen (method decoder +
# every encoder block trained, 89.2% of the encoder) at full fine-tuning's 3e-3, seeds 0-2 — does
# full fine-tuning's lead come from the blocks or the front end? "loraff": LoRA rank 8 on the
# feed-forward modules of every block (4.58%) at 3e-3, 6e-3 and 1e-2, seed 0 — is LoRA at a searched
# rate a route? Output: runs/screen20-blocks-seedS, runs/screen20-loraff-lrR-seed0 (collected by
# session20_collect.py). Usage: scripts/adapt/session20_diagnostics.sh [blocks] [loraff]
set -e
cd "$(dirname "$0")/../.."  # the repository root
one() {  # OUT LR SEED LABEL METHOD OVERRIDE
  local out=$1 lr=$2 seed=$3
  [ -f "$out/adaptation.json" ] && return 0
  .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr "$lr" --scheds cosine --methods --grid \
    --variant "$4" "$5" "$6" --set train.precision=fp32 seed="$seed" --out "$out" > "$out.log" 2>&1 \
    || { echo "FAILED $out"; tail "$out.log"; return 0; }
  .venv/bin/python -c "import json; r=json.load(open('$out/adaptation.json'))['rows'][-1]; \
print('$out', round(r['target_dev_wer'], 2), round(r['target_test_wer'], 2), round(1000 * r['step_s'], 1))"
}
for what in "${@:-blocks loraff}"; do
  for w in $what; do
    case $w in
      blocks) for s in 0 1 2; do
          one "runs/screen20-blocks-seed$s" 0.003 "$s" "decoder + every block (front end frozen)" decoder \
            "adapt.also_train=['encoder.layers.**']"; done ;;
      loraff) for lr in 0.003 0.006 0.01; do
          one "runs/screen20-loraff-lr${lr#0.}-seed0" "$lr" 0 "LoRA r=8 on ff1, ff2" lora \
            "adapt.lora_targets=['ff1.**', 'ff2.**']"; done ;;
      *) echo "unknown diagnostic $w" >&2; exit 2 ;;
    esac
  done
done
