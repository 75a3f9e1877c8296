#!/bin/bash
# session 20, exploratory: screen changes to the SiLU row (adapters r=64, SiLU, + norms and
# depthwise kernels of blocks 1-3; 6e-3 cosine, 300 updates, fp32) on target_dev, each seed in a
# fresh process. The changes leave a step's work as it is (learning rates per parameter group) or
# nearly (a wider bottleneck inside the 5% budget). Usage:
#   scripts/adapt/session20_screen.sh "VARIANT ..." ["SEEDS", default "0 1 2"]
# VARIANT: row (the SiLU row itself), dec05 (decoder at half the rate), ad2 (adapters at twice),
# dec05ad2 (both), dec2 / dec15 (decoder at 2x / 1.5x), enc05 (adapters, norms and
# depthwise kernels at 0.5x), par1 / par4 (the adapters parallel to each block, reading its
# input, at scale 1 / 4), pos (also the attention's pos_bias_u / v of blocks 1-3), conv
# (convolution adapters, kernel 31), convk15r70 (kernel 15, bottleneck 70), r128 (a diagnostic
# over the budget: bottleneck 128), ctc005 / ctc6 (the CTC head's weight in the loss 0.05 / 0.6
# instead of the base run's 0.3), ctc1 (1.0), convctc6 (conv with 0.6), r72 (bottleneck 72), r72dec05ad2.
set -e
cd "$(dirname "$0")/../.."  # the repository root
SEEDS=${2:-0 1 2}
AT="adapt.also_train=['encoder.layers.[123].**.*norm*', 'encoder.layers.[123].**.depthwise']"
DEC="predictor: 0.5, joiner: 0.5, ctc_head: 0.5"
extra() {
  case $1 in
    row) ;;
    dec05) echo "optim.lr_scales={$DEC}" ;;
    ad2) echo "optim.lr_scales={adapters: 2.0}" ;;
    dec05ad2) echo "optim.lr_scales={adapters: 2.0, $DEC}" ;;
    dec2) echo "optim.lr_scales={predictor: 2.0, joiner: 2.0, ctc_head: 2.0}" ;;
    dec15) echo "optim.lr_scales={predictor: 1.5, joiner: 1.5, ctc_head: 1.5}" ;;
    enc05) echo "optim.lr_scales={adapters: 0.5, encoder: 0.5}" ;;
    r72) ;;
    r128 | conv | convk15r70) ;;
    pos) echo "adapt.also_train=['encoder.layers.[123].**.*norm*', 'encoder.layers.[123].**.depthwise', 'encoder.layers.[123].**.pos_bias_*']" ;;
    ctc005) echo "model.ctc_weight=0.05" ;;
    ctc6 | convctc6) echo "model.ctc_weight=0.6" ;;
    ctc1) echo "model.ctc_weight=1.0" ;;
    par1) echo "adapt.adapter_mode=parallel" ;;
    par4) echo "adapt.adapter_mode=parallel"; echo "adapt.adapter_scale=4" ;;
    r72dec05ad2) echo "optim.lr_scales={adapters: 2.0, $DEC}" ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}
read -ra VARIANTS <<< "$1"
for v in "${VARIANTS[@]}"; do  # a typo stops the screen before any run
  extra "$v" > /dev/null || exit 2
done
for v in "${VARIANTS[@]}"; do
  r=64; k=0
  case $v in r72*) r=72 ;; r128) r=128 ;; conv | convctc6) k=31 ;; convk15r70) k=15; r=70 ;; esac
  for s in $SEEDS; do
    out="runs/screen20-$v-seed$s"
    [ -f "$out/adaptation.json" ] && continue
    mapfile -t x < <(extra "$v")
    .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr 0.006 --scheds cosine --methods --grid \
      --variant "SiLU row, $v" adapters adapt.bottleneck=$r adapt.adapter_act=silu adapt.adapter_conv_kernel=$k "$AT" "${x[@]}" \
      --set train.precision=fp32 seed=$s --out "$out" > "$out.log" 2>&1 || { echo "FAILED $out"; tail "$out.log"; continue; }
    .venv/bin/python -c "import json,sys; r=json.load(open('$out/adaptation.json'))['rows'][-1]; print('$v', $s, round(r['target_dev_wer'],2), round(1000*r['step_s'],1), round(r['trainable_encoder_pct'],2))"
  done
done
