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

``candidates`` turns this into closed-set labelling (:mod:`semiasr.decoding.closed_set`): instead of
decoding, every model scores each utterance against a fixed list of transcripts ("train": the
distinct transcripts of the first run's training splits) by log P(y | x) over all alignments; the
models' posteriors over the list are averaged, ``neighbours=k`` then averages each utterance's
posteriors with those of its k nearest utterances of the same speaker (instead of a hard vote), and
``balance`` rescales each speaker's posteriors so that the candidates' shares match their training
frequencies (Sinkhorn–Knopp; class-balanced self-training). The label is the most probable
candidate and ``pl_agreement`` its posterior. For corpora of a few repeated phrases (digits,
commands), where a model's confusions are shared by all of a speaker's repetitions.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semiasr.data.loader import corpus_texts
from semiasr.data.manifest import load_split, write_jsonl
from semiasr.decoding.closed_set import balance as balance_to_prior
from semiasr.decoding.closed_set import candidate_posteriors, smooth_over_neighbours
from semiasr.decoding.neighbours import MAX_DTW_CELLS, dtw_distances, frame_pairs, neighbour_vote
from semiasr.errors import ConfigError, DataError
from semiasr.eval.wer import wer
from semiasr.tasks.evaluate import decode_split, load_trained, routed, split_loader

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
    # closed-set labelling (candidates): how many, whether balanced, and the WER of the models'
    # averaged closed-set posteriors' argmax before smoothing and balance
    candidates: int = 0
    balanced: bool = False
    closed_set_reference_wer: float | None = None
    changed_by_balance: int = 0
    balanced_speakers: int = 0  # speaker groups large enough to balance

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
    candidates: str | None = None,
    balance: bool = False,
) -> PseudoLabelSummary:
    """Decode ``split`` of the first run's corpus (``data.root``; or a manifest path) with every
    run in ``runs`` and write a semiasr JSONL manifest to ``out`` whose transcripts are the voted
    hypotheses; utterances with an empty hypothesis, or fewer than ``min_agreement`` of the models
    behind theirs, are left out. ``neighbours`` > 0 first relabels every utterance by the vote of
    its ``neighbours`` nearest utterances of the same speaker (utterances without a speaker form
    one group; see the module's docstring); ``pl_agreement`` and ``min_agreement`` then refer to
    that vote's share (of the ``neighbours`` + 1 votes) instead of the models'. The models decode
    on ``device`` ("cpu", "cuda", "cuda:N", "auto"). Returns a summary (also the JSON that
    ``semiasr pseudo-label`` prints). ``candidates`` ("train" or a text file of one transcript per
    line) and ``balance``: closed-set labelling, see the module's docstring."""
    if not runs:
        raise ConfigError("pseudo_label needs at least one trained run")
    if not 0.0 <= min_agreement <= 1.0:
        raise ConfigError(f"min_agreement must lie in [0, 1], got {min_agreement}")
    if neighbours < 0:
        raise ConfigError(f"neighbours must be 0 (off) or more, got {neighbours}")
    if balance and not candidates:
        raise ConfigError("balance needs candidates (e.g. candidates='train')")
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
    if candidates:
        return _closed_set_labels(
            decoders, split, cuts, out, candidates, balance, neighbours, min_agreement, runs
        )
    per_run: list[dict[str, str]] = []
    refs: dict[str, str] = {}
    decode_s = 0.0
    for dec in decoders:
        # each run with its own features and normalisation, on the first run's corpus
        utts, timing = decode_split(dec, split, _data_on(dec, root), method=method, beam=beam)
        per_run.append({u.id: u.hyp for u in utts})
        refs = {u.id: u.ref for u in utts}
        decode_s += timing["decode_s"]
    # the loader leaves out what its checks refuse under data.skip_bad (too long, unreadable …)
    decoded = [c for c in cuts if all(c.id in h for h in per_run)]
    if not decoded:
        raise DataError(f"no utterance of {split} was decoded", item=split)
    refs = {k: v for k, v in refs.items() if all(k in h for h in per_run)}
    voted = {c.id: vote([h[c.id] for h in per_run]) for c in decoded}
    labels = {k: v[0] for k, v in voted.items()}
    shares = {k: v[1] for k, v in voted.items()}
    model_vote_wer = _reference_wer(refs, labels)
    changed = 0
    if neighbours:
        first = _data_on(decoders[0], root)
        new, nb_shares = neighbour_labels(decoders[0], split, first, decoded, labels, neighbours)
        changed = sum(new[k] != labels[k] for k in labels)
        labels = new
        shares.update(nb_shares)  # utterances that took no part in a vote keep the models' share
    return _write_labels(
        out, runs, split, cuts, decoded, labels, shares, refs, min_agreement,
        decode_s=decode_s,
        per_run_reference_wer=[
            w for w in (_reference_wer(refs, h) for h in per_run) if w is not None
        ],
        neighbours=neighbours,
        changed_by_neighbours=changed,
        model_vote_reference_wer=model_vote_wer,
    )  # fmt: skip


def _write_labels(
    out: str | Path,
    runs: list[str | Path],
    split: str,
    cuts: list[Any],
    decoded: list[Any],
    labels: dict[str, str],
    shares: dict[str, float],
    refs: dict[str, str],
    min_agreement: float,
    **fields: Any,
) -> PseudoLabelSummary:
    """Write the labelled manifest (see :func:`_label_cuts`) and summarise it; ``fields``: the
    summary's method-specific fields."""
    kept, agreements, dropped_empty, dropped_agreement = _label_cuts(
        decoded, labels, shares, min_agreement
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return PseudoLabelSummary(
        out=str(out),
        runs=[str(r) for r in runs],
        split=split,
        utterances=len(cuts),
        written=write_jsonl(kept, out),
        dropped_empty=dropped_empty,
        dropped_agreement=dropped_agreement,
        not_decoded=len(cuts) - len(decoded),
        mean_agreement=sum(agreements) / len(agreements) if agreements else 0.0,
        reference_wer=_reference_wer(refs, labels),
        written_reference_wer=_reference_wer(
            {c.id: refs[c.id] for c in kept if c.id in refs}, labels
        ),
        **fields,
    )


def _label_cuts(
    decoded: list[Any], labels: dict[str, str], shares: dict[str, float], min_agreement: float
) -> tuple[list[Any], list[float], int, int]:
    """The cuts with their labels (empty ones and those below ``min_agreement`` left out), the
    kept shares, and the counts of the two kinds left out."""
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
    return kept, agreements, dropped_empty, dropped_agreement


def _data_on(decoder: Any, root: str) -> Any:
    """The decoder's own data settings (features, normalisation) on the corpus at ``root``."""
    data_cfg = copy.copy(decoder.cfg.data)
    data_cfg.root = root
    return data_cfg


def _speaker_groups(cuts: list[Any]) -> dict[str, list[Any]]:
    """Cuts by their supervision's speaker ("" for none: those form one group)."""
    groups: dict[str, list[Any]] = collections.defaultdict(list)
    for c in cuts:
        groups[c.supervisions[0].speaker or ""].append(c)
    return groups


def speaker_distances(
    decoder: Any, split: str, data_cfg: Any, cuts: list[Any]
) -> list[tuple[str, list[str], np.ndarray]]:
    """(speaker, cut ids, (n, n) DTW distances) for each speaker group of ``cuts`` with at least
    two cuts the loader reads (cuts with no speaker form one group), on the features ``decoder``
    reads, normalised as it normalises them."""
    loader = split_loader(decoder, split, data_cfg)
    feats: dict[str, np.ndarray] = {}
    for batch in loader:
        for i, cid in enumerate(batch.cut_ids):
            n = int(batch.feature_lengths[i])
            feats[cid] = batch.features[i, :n].double().numpy()
    out = []
    for speaker, group in sorted(_speaker_groups(cuts).items()):
        ids = [c.id for c in group if c.id in feats]
        if len(ids) >= 2:
            out.append((speaker, ids, dtw_distances([feats[i] for i in ids])))
    return out


def neighbour_labels(
    decoder: Any, split: str, data_cfg: Any, cuts: list[Any], labels: dict[str, str], k: int
) -> tuple[dict[str, str], dict[str, float]]:
    """``labels`` after a ``k``-nearest-neighbour vote within each speaker (cuts with no speaker
    form one group), distances by DTW of the features ``decoder`` reads (normalised as it
    normalises them), and the share of its k + 1 votes for each label that took part in a vote
    (not for a speaker's only cut, nor for cuts the loader left out: those keep their label)."""
    out, shares = dict(labels), {}
    for speaker, ids, dist in speaker_distances(decoder, split, data_cfg, cuts):
        new, share = neighbour_vote([labels[i] for i in ids], dist, k)
        out.update(zip(ids, new))
        shares.update(zip(ids, share))
        log.info(
            "neighbour vote, speaker %r: %d of %d labels changed",
            speaker, sum(a != b for a, b in zip(new, (labels[i] for i in ids))), len(ids),
        )  # fmt: skip
    return out, shares


def candidate_list(spec: str, decoder: Any) -> tuple[list[str], np.ndarray]:
    """The candidate transcripts and their prior weights: ``"train"`` → the distinct transcripts of
    ``decoder``'s training splits (``data.train``) weighted by their counts; otherwise a UTF-8 text
    file, one transcript per line (a repeated line weighs more). Each is normalised as the
    tokenizer normalises (so it matches what decoding writes); empty ones are left out."""
    if spec == "train":
        texts = corpus_texts(decoder.cfg.data, list(decoder.cfg.data.train))
        origin = f"the training splits {list(decoder.cfg.data.train)}"
    else:
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"candidates must be 'train' or a text file; {spec} is neither")
        texts = path.read_text(encoding="utf-8").splitlines()
        origin = str(path)
    tok = decoder.tokenizer
    counts = collections.Counter(
        t for t in (tok.decode(tok.encode(x, item=f"candidate {x!r}")) for x in texts) if t.strip()
    )
    if not counts:
        raise ConfigError(f"no candidate transcript in {origin}")
    names = sorted(counts)
    return names, np.array([counts[n] for n in names], dtype=np.float64)


@torch.no_grad()
def candidate_scores(
    decoder: Any, split: str, data_cfg: Any, candidates: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """log P(y_c | x) of every candidate transcript (C,) for each utterance of ``split`` (summed
    over all alignments: the model's negative loss, ``sequence_log_likelihood``), and the
    utterances' own transcripts (for reports only)."""
    loader = split_loader(decoder, split, data_cfg)
    model = decoder.model
    tokens = [decoder.tokenizer.encode(c, item=f"candidate {c!r}") for c in candidates]
    scores: dict[str, np.ndarray] = {}
    refs: dict[str, str] = {}
    for batch in loader:
        b = batch.to(decoder.device)
        n = len(b)
        with routed(model, decoder.cfg, b.domains):
            enc = model.encode(b.features, b.feature_lengths)
            cols = [
                model.sequence_log_likelihood(
                    enc,
                    torch.tensor([t] * n, dtype=torch.long, device=decoder.device),
                    torch.full((n,), len(t), dtype=torch.long, device=decoder.device),
                )
                for t in tokens
            ]
        ll = torch.stack(cols, dim=1).cpu().numpy()
        for i, cid in enumerate(batch.cut_ids):
            scores[cid] = ll[i]
            refs[cid] = batch.texts[i]
    return scores, refs


def _closed_set_labels(
    decoders: list[Any],
    split: str,
    cuts: list[Any],
    out: str | Path,
    spec: str,
    balance: bool,
    neighbours: int,
    min_agreement: float,
    runs: list[str | Path],
) -> PseudoLabelSummary:
    """``pseudo_label`` with candidates: see the module's docstring."""
    names, prior = candidate_list(spec, decoders[0])
    root = decoders[0].cfg.data.root
    per_run: list[dict[str, np.ndarray]] = []
    refs: dict[str, str] = {}
    started = time.perf_counter()
    for dec in decoders:
        scores, refs = candidate_scores(dec, split, _data_on(dec, root), names)
        per_run.append(scores)
    decode_s = time.perf_counter() - started
    decoded = [c for c in cuts if all(c.id in r for r in per_run)]
    if not decoded:
        raise DataError(f"no utterance of {split} was decoded", item=split)
    refs = {c.id: refs[c.id] for c in decoded}
    # each utterance's posteriors averaged over the runs that can score it (some candidate
    # possible); one no run can score (too short for every candidate) gets no label
    post: dict[str, np.ndarray] = {}
    for c in decoded:
        rows = [r[c.id] for r in per_run if np.isfinite(r[c.id]).any()]
        if rows:
            post[c.id] = candidate_posteriors(np.stack(rows)).mean(axis=0)
    scorable = [c for c in decoded if c.id in post]
    argmax = {k: names[int(np.argmax(p))] for k, p in post.items()}
    groups = (
        speaker_distances(decoders[0], split, _data_on(decoders[0], root), scorable)
        if neighbours
        else [
            (spk, [c.id for c in g], None) for spk, g in sorted(_speaker_groups(scorable).items())
        ]
    )
    smoothed = dict(argmax)
    balanced_groups = 0
    for speaker, ids, dist in groups:
        p = np.stack([post[i] for i in ids])
        if dist is not None:
            p = smooth_over_neighbours(p, dist, neighbours)
            smoothed.update((i, names[int(np.argmax(row))]) for i, row in zip(ids, p))
        # the marginals of a group smaller than the candidates it must cover would override its
        # audio (one utterance: the label becomes the prior's mode), so such groups keep theirs
        if balance and len(ids) >= int((prior > 0).sum()):
            p = balance_to_prior(p, prior)
            balanced_groups += 1
        post.update(zip(ids, p))
        log.info("closed-set labels, speaker %r: %d utterances", speaker, len(ids))
    labels = {c.id: "" for c in decoded}  # unscorable: dropped as empty
    labels.update((k, names[int(np.argmax(p))]) for k, p in post.items())
    shares = {c.id: 0.0 for c in decoded}
    shares.update((k, float(np.max(p))) for k, p in post.items())
    per_run_wer = [
        _reference_wer(refs, {k: names[int(np.argmax(v))] for k, v in r.items()}) for r in per_run
    ]
    return _write_labels(
        out, runs, split, cuts, decoded, labels, shares, refs, min_agreement,
        decode_s=decode_s,
        per_run_reference_wer=[w for w in per_run_wer if w is not None],
        neighbours=neighbours,
        changed_by_neighbours=sum(smoothed[k] != argmax[k] for k in argmax),
        changed_by_balance=sum(labels[k] != smoothed[k] for k in argmax),
        balanced_speakers=balanced_groups,
        candidates=len(names),
        balanced=balance,
        closed_set_reference_wer=_reference_wer(refs, argmax),
    )  # fmt: skip
