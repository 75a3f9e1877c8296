#!/bin/bash
# session 21: full fine-tuning against the SiLU row (adapters r=64, SiLU, + norms and depthwise kernels
# of blocks 1-3) from a base trained with multi-condition augmentation (BASE, default runs/mct21:
# `semiasr demo name=mct21 "data.augment.noise_snr_db=[0,30]" data.augment.noise_prob=0.3
# data.augment.reverb_prob=0.2 data.augment.telephone_prob=0.2`). 300 updates on target_train, cosine,
# fp32, waveform augmentation off while adapting (as in every earlier table), each run its own process.
# Usage:  [PREFIX=s22] scripts/adapt/session21_mct.sh "METHOD:LR ..." "SEEDS" [BASE]
#   (runs go to runs/PREFIX-BASE-METHOD-LR-seedS, PREFIX default s21; session 22 re-ran full and conv
#   on its code under PREFIX=s22)
#   METHOD: full | row | conv (the convolution row, kernel 31) | conv15 (kernel 15) | conv123 (kernel 31,
#   adapters in blocks 1-3 only: session 22) | conv48fe (r=48, one more after the front end) | conv2pos
#   (r=32 after each block's convolution module and output): session 22's exploratory telephone
#   screen; diagnostics (which part
#   of the encoder learns the telephone channel?): blocks (full fine-tuning with the front end frozen),
#   frontend (the decoder and the front end only), rowfe (the SiLU row + the front end), block0 /
#   block3 (the decoder and one whole block); e.g. "full:0.003 row:0.006" "1 2 3 4"
set -e
cd "$(dirname "$0")/../.."  # the repository root
BASE=${3:-runs/mct21}
TAG=$(basename "$BASE")
AT="adapt.also_train=['encoder.layers.[123].**.*norm*', 'encoder.layers.[123].**.depthwise']"
NOAUG=("data.augment.noise_snr_db=[]" data.augment.reverb_prob=0 data.augment.telephone_prob=0 train.precision=fp32)
read -ra RUNS <<< "$1"
for ml in "${RUNS[@]}"; do
  [[ $ml == *:* ]] || { echo "expected METHOD:LR, got $ml" >&2; exit 2; }
  case ${ml%%:*} in full | row | conv | conv15 | conv123 | conv48fe | conv2pos | blocks | frontend | rowfe | block0 | block3) ;; *) echo "unknown method in $ml" >&2; exit 2 ;; esac
done
for ml in "${RUNS[@]}"; do
  m=${ml%%:*}; lr=${ml#*:}
  case $m in
    full) spec=(--methods full) ;;
    row) spec=(--methods --variant "SiLU row" adapters adapt.bottleneck=64 adapt.adapter_act=silu "$AT") ;;
    conv) spec=(--methods --variant "conv SiLU row" adapters adapt.bottleneck=64 adapt.adapter_act=silu
                adapt.adapter_conv_kernel=31 "$AT") ;;
    conv123) spec=(--methods --variant "conv SiLU row, blocks 1-3" adapters adapt.bottleneck=64 adapt.adapter_act=silu
                   adapt.adapter_conv_kernel=31 "adapt.layers=layers.[123]" "$AT") ;;
    conv48fe) spec=(--methods --variant "conv SiLU row r=48, + after the front end" adapters adapt.bottleneck=48
                    adapt.adapter_act=silu adapt.adapter_conv_kernel=31 "adapt.adapter_extra=['subsampling']" "$AT") ;;
    conv2pos) spec=(--methods --variant "conv SiLU row r=32 after conv and output" adapters adapt.bottleneck=32
                    adapt.adapter_act=silu adapt.adapter_conv_kernel=31 "adapt.adapter_positions=['conv', 'output']" "$AT") ;;
    conv15) spec=(--methods --variant "conv k=15 SiLU row" adapters adapt.bottleneck=64 adapt.adapter_act=silu
                  adapt.adapter_conv_kernel=15 "$AT") ;;
    blocks) spec=(--methods --variant "decoder + every block (front end frozen)" decoder
                  "adapt.also_train=['encoder.layers.**']") ;;
    block0 | block3) spec=(--methods --variant "decoder + block ${m#block}" decoder
                           "adapt.also_train=['encoder.layers.${m#block}.**']") ;;
    frontend) spec=(--methods --variant "decoder + front end" decoder "adapt.also_train=['encoder.subsampling.**']") ;;
    rowfe) spec=(--methods --variant "SiLU row + front end" adapters adapt.bottleneck=64 adapt.adapter_act=silu
                 "adapt.also_train=['encoder.layers.[123].**.*norm*', 'encoder.layers.[123].**.depthwise', 'encoder.subsampling.**']") ;;
  esac
  for s in $2; do
    out="runs/${PREFIX:-s21}-$TAG-$m-$lr-seed$s"
    [ -f "$out/adaptation.json" ] && continue
    .venv/bin/python benchmarks/adaptation.py "$BASE" --steps 300 --lr "$lr" --scheds cosine "${spec[@]}" \
      --set "${NOAUG[@]}" seed="$s" --out "$out" > "$out.log" 2>&1 || { echo "FAILED $out"; tail "$out.log"; continue; }
    .venv/bin/python -c "import json; r=json.load(open('$out/adaptation.json'))['rows'][-1]; print('$m', '$lr', $s, *(round(r[k], 2) for k in ('target_dev_wer', 'target_test_wer', 'source_test_wer')), round(1000*r['step_s'],1), round(r['trainable_encoder_pct'],2))"
  done
done
