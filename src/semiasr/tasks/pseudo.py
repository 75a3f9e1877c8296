"""Pseudo labels: transcribe unlabelled audio with one or more trained models and write the result
as a manifest that training reads like any other (``data.train=[train,runs/pl/pseudo.jsonl]``).

With several models (e.g. seeds of one recipe) each utterance takes the hypothesis most of them
agree on — ties go to the model listed first — and its ``pl_agreement`` (the share of models that
gave it) is kept in the manifest; ``min_agreement`` drops the utterances the models disagree on.
This is the teacher side of self-training and noisy-student training (Xie et al., 2020; Park et
al., "Improved Noisy Student Training for Automatic Speech Recognition", 2020): the student trains
on labelled data plus these labels, with augmentation on. Nothing here reads a reference
transcript; where the split has them, the summary reports the pseudo labels' WER against them,
for information only.

``neighbours=k`` then relabels each utterance with the majority of its own label and those of its k
nearest utterances of the same speaker under dynamic time warping of the first run's features
(:mod:`semiasr.decoding.neighbours`): for recordings that repeat a few words (digits, commands),
where one speaker's repetitions of a word sound alike and a model's errors on them are scattered.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semiasr.data.loader import build_dataloader
from semiasr.data.manifest import load_split, write_jsonl
from semiasr.decoding.neighbours import MAX_DTW_CELLS, dtw_distances, frame_pairs, neighbour_vote
from semiasr.errors import ConfigError, DataError
from semiasr.eval.wer import wer
from semiasr.tasks.evaluate import decode_split, load_trained

__all__ = ["PseudoLabelSummary", "pseudo_label", "vote"]

log = logging.getLogger(__name__)


@dataclass
class PseudoLabelSummary:
    """What :func:`pseudo_label` wrote."""

    out: str
    runs: list[str]
    split: str
    utterances: int
    written: int
    dropped_empty: int
    dropped_agreement: int
    not_decoded: int  # left out by the loader's checks (data.skip_bad)
    mean_agreement: float
    # WER of the voted hypotheses of every decoded utterance (the dropped ones too), and of the
    # written labels only, against the split's own transcripts where it has them
    reference_wer: float | None = None
    written_reference_wer: float | None = None
    decode_s: float = 0.0
    per_run_reference_wer: list[float] = field(default_factory=list)
    # neighbour voting (neighbours > 0): labels it changed, and the models' vote's WER before it
    neighbours: int = 0
    changed_by_neighbours: int = 0
    model_vote_reference_wer: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def vote(hypotheses: list[str]) -> tuple[str, float]:
    """The hypothesis most models gave (ties: the earliest) and the share that gave it."""
    if not hypotheses:
        raise ValueError("vote needs at least one hypothesis")
    counts = collections.Counter(hypotheses)
    top = max(counts.values())
    winner = next(h for h in hypotheses if counts[h] == top)
    return winner, top / len(hypotheses)


def _reference_wer(refs: dict[str, str], hyps: dict[str, str]) -> float | None:
    """WER of ``hyps`` against the split's transcripts, None where some utterance has none."""
    if not refs or not all(r.strip() for r in refs.values()):
        return None
    keys = list(refs)
    return wer([refs[k] for k in keys], [hyps.get(k, "") for k in keys])


def pseudo_label(
    runs: list[str | Path],
    split: str,
    out: str | Path,
    *,
    checkpoint: str = "averaged",
    method: str = "greedy",
    beam: int = 4,
    min_agreement: float = 0.0,
    neighbours: int = 0,
    device: str = "cpu",
) -> PseudoLabelSummary:
    """Decode ``split`` of the first run's corpus (``data.root``; or a manifest path) with every
    run in ``runs`` and write a semiasr JSONL manifest to ``out`` whose transcripts are the voted
    hypotheses; utterances with an empty hypothesis, or fewer than ``min_agreement`` of the models
    behind theirs, are left out. ``neighbours`` > 0 first relabels every utterance by the vote of
    its ``neighbours`` nearest utterances of the same speaker (utterances without a speaker form
    one group; see the module's docstring); ``pl_agreement`` and ``min_agreement`` then refer to
    that vote's share (of the ``neighbours`` + 1 votes) instead of the models'. The models decode
    on ``device`` ("cpu", "cuda", "cuda:N", "auto"). Returns a summary (also the JSON that
    ``semiasr pseudo-label`` prints)."""
    if not runs:
        raise ConfigError("pseudo_label needs at least one trained run")
    if not 0.0 <= min_agreement <= 1.0:
        raise ConfigError(f"min_agreement must lie in [0, 1], got {min_agreement}")
    if neighbours < 0:
        raise ConfigError(f"neighbours must be 0 (off) or more, got {neighbours}")
    decoders = [load_trained(r, checkpoint, device=device) for r in runs]
    root = decoders[0].cfg.data.root
    cuts = load_split(root, split)
    if neighbours:  # refuse an oversized vote before decoding anything
        shift_s = float(decoders[0].cfg.data.features.frame_shift_ms) / 1000.0
        for speaker, group in _speaker_groups(cuts).items():
            pairs = frame_pairs([round(c.duration / shift_s) for c in group])
            if pairs > MAX_DTW_CELLS:
                raise ConfigError(
                    f"neighbour voting over speaker {speaker!r} of {split} ({len(group)} "
                    f"utterances) would compare about {pairs:.3g} frame pairs (limit "
                    f"{MAX_DTW_CELLS:.3g}); it is meant for short repeated words"
                )
    per_run: list[dict[str, str]] = []
    refs: dict[str, str] = {}
    decode_s = 0.0
    for dec in decoders:
        # each run with its own features and normalisation, on the first run's corpus
        data_cfg = copy.copy(dec.cfg.data)
        data_cfg.root = root
        utts, timing = decode_split(dec, split, data_cfg, method=method, beam=beam)
        per_run.append({u.id: u.hyp for u in utts})
        refs = {u.id: u.ref for u in utts}
        decode_s += timing["decode_s"]
    # the loader leaves out what its checks refuse under data.skip_bad (too long, unreadable …)
    decoded = [c for c in cuts if all(c.id in h for h in per_run)]
    not_decoded = len(cuts) - len(decoded)
    if not decoded:
        raise DataError(f"no utterance of {split} was decoded", item=split)
    refs = {k: v for k, v in refs.items() if all(k in h for h in per_run)}
    voted = {c.id: vote([h[c.id] for h in per_run]) for c in decoded}
    labels = {k: v[0] for k, v in voted.items()}
    shares = {k: v[1] for k, v in voted.items()}
    model_vote_wer = _reference_wer(refs, labels)
    changed = 0
    if neighbours:
        first = copy.copy(decoders[0].cfg.data)
        first.root = root
        new, nb_shares = neighbour_labels(decoders[0], split, first, decoded, labels, neighbours)
        changed = sum(new[k] != labels[k] for k in labels)
        labels = new
        shares.update(nb_shares)  # utterances that took no part in a vote keep the models' share
    kept, agreements = [], []
    dropped_empty = dropped_agreement = 0
    for cut in decoded:
        hyp, share = labels[cut.id], shares[cut.id]
        if not hyp.strip():
            dropped_empty += 1
            continue
        if share < min_agreement:
            dropped_agreement += 1
            continue
        agreements.append(share)
        custom = {k: v for k, v in (cut.custom or {}).items() if k != "labelled"}
        custom["pl_agreement"] = round(share, 4)
        sup = cut.supervisions[0]  # every cut the loader reads has one (text or not)
        kept.append(
            dataclasses.replace(
                cut,
                supervisions=[dataclasses.replace(sup, text=hyp)],
                custom=custom,
            )
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = write_jsonl(kept, out)
    return PseudoLabelSummary(
        out=str(out),
        runs=[str(r) for r in runs],
        split=split,
        utterances=len(cuts),
        written=written,
        dropped_empty=dropped_empty,
        dropped_agreement=dropped_agreement,
        not_decoded=not_decoded,
        mean_agreement=sum(agreements) / len(agreements) if agreements else 0.0,
        reference_wer=_reference_wer(refs, labels),
        written_reference_wer=_reference_wer(
            {c.id: refs[c.id] for c in kept if c.id in refs}, labels
        ),
        decode_s=decode_s,
        per_run_reference_wer=[
            w for w in (_reference_wer(refs, h) for h in per_run) if w is not None
        ],
        neighbours=neighbours,
        changed_by_neighbours=changed,
        model_vote_reference_wer=model_vote_wer,
    )


def _speaker_groups(cuts: list[Any]) -> dict[str, list[Any]]:
    """Cuts by their supervision's speaker ("" for none: those form one group)."""
    groups: dict[str, list[Any]] = collections.defaultdict(list)
    for c in cuts:
        groups[c.supervisions[0].speaker or ""].append(c)
    return groups


def neighbour_labels(
    decoder: Any, split: str, data_cfg: Any, cuts: list[Any], labels: dict[str, str], k: int
) -> tuple[dict[str, str], dict[str, float]]:
    """``labels`` after a ``k``-nearest-neighbour vote within each speaker (cuts with no speaker
    form one group), distances by DTW of the features ``decoder`` reads (normalised as it
    normalises them), and the share of its k + 1 votes for each label that took part in a vote
    (not for a speaker's only cut, nor for cuts the loader left out: those keep their label)."""
    loader = build_dataloader(
        data_cfg, [split], decoder.tokenizer, train=False, seed=0, labels=False,
        feature_stats=decoder.stats,
    )  # fmt: skip
    feats: dict[str, np.ndarray] = {}
    for batch in loader:
        for i, cid in enumerate(batch.cut_ids):
            n = int(batch.feature_lengths[i])
            feats[cid] = batch.features[i, :n].double().numpy()
    out, shares = dict(labels), {}
    for speaker, group in sorted(_speaker_groups(cuts).items()):
        ids = [c.id for c in group if c.id in feats]
        if len(ids) < 2:
            continue
        dist = dtw_distances([feats[i] for i in ids])
        new, share = neighbour_vote([labels[i] for i in ids], dist, k)
        out.update(zip(ids, new))
        shares.update(zip(ids, share))
        log.info(
            "neighbour vote, speaker %r: %d of %d labels changed",
            speaker, sum(a != b for a, b in zip(new, (labels[i] for i in ids))), len(ids),
        )  # fmt: skip
    return out, shares
