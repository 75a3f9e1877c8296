"""The data loader: manifests → validated utterance table → bucketed feature batches → ``Batch``.

Per utterance: read (soundfile) → mono → resample to ``features.sample_rate`` (soxr) → waveform
augmentation (training) → level normalisation → 80-d Kaldi log-mel (kaldi-native-fbank) → per batch:
pad to ``(B, T, 80)``, mean/variance normalisation, SpecAugment (training), finite check.

The Lhotse ``CutSet`` is turned once into plain lists (paths, offsets, durations, token ids, domain
ids) so that no per-batch work goes through Lhotse objects. Text is tokenised and audio headers are
checked when the loader is built, so a bad item fails then (or is skipped with ``skip_bad``), not
mid-epoch.

The loader is resumable: ``set_epoch(e)``, iterate, ``state_dict()`` (epoch and position) into the
checkpoint; after ``load_state_dict`` iteration continues with the next unseen batch. Random choices
come from ``default_rng([seed, epoch, rank, batch index])``, so results do not depend on
``num_workers``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from semiasr.data.audio import normalize_level, read_audio
from semiasr.data.augment import WaveAugmenter, spec_augment, vtlp
from semiasr.data.batch import Batch
from semiasr.data.config import DataConfig
from semiasr.data.features import GlobalStats, NativeFbank
from semiasr.data.manifest import DataReport, load_split, validate_cuts
from semiasr.data.sampler import plan_batches
from semiasr.data.tokenizer import Tokenizer
from semiasr.errors import ConfigError, DataError

__all__ = [
    "Loader",
    "UtteranceTable",
    "build_dataloader",
    "corpus_texts",
    "domain_map",
    "is_labelled",
    "load_splits",
]

log = logging.getLogger(__name__)
DEFAULT_DOMAINS = {"source": 0, "target": 1}


@dataclass
class UtteranceTable:
    """Plain per-utterance columns, built once from a CutSet; index i is one utterance."""

    ids: list[str]
    paths: list[str | None]  # None: not a plain file, read through Lhotse (``cuts[i]``)
    starts: np.ndarray
    durations: np.ndarray
    sample_rates: list[int]
    channels: list[int | None]
    texts: list[str]
    speakers: list[str]
    domains: np.ndarray
    tokens: list[list[int]]
    cuts: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def fingerprint(self) -> str:
        h = hashlib.sha1()
        for i, d in zip(self.ids, self.durations.tolist()):
            h.update(f"{i}:{d:.4f};".encode())
        return h.hexdigest()[:16]


def load_splits(
    cfg: DataConfig, split_names: Sequence[str], report: DataReport | None = None
) -> Any:
    """The CutSet of ``split_names`` under ``cfg.root``, concatenated and validated per ``cfg``."""
    from lhotse import CutSet

    report = report or DataReport(cfg.skip_bad)
    parts = [load_split(cfg.root, s, report=report) for s in split_names]
    for s, p in zip(split_names, parts):
        if len(p) == 0:
            raise DataError(f"split {s!r} under {cfg.root} holds no utterances", item=s)
    cuts = CutSet.from_cuts([c for p in parts for c in p])
    return validate_cuts(
        cuts,
        min_duration=cfg.min_utt_duration,
        max_duration=cfg.max_utt_duration,
        check_audio=cfg.validate,
        report=report,
    )


def domain_map(cfg_domains: dict[str, int], names: Sequence[str]) -> dict[str, int]:
    """``cfg_domains`` if set, else source=0, target=1 and other ``names`` after them, sorted."""
    if cfg_domains:
        return dict(cfg_domains)
    out = dict(DEFAULT_DOMAINS)
    for n in sorted(set(names) - set(out)):
        out[n] = len(out)
    return out


def is_labelled(cut: Any) -> bool:
    """False where the manifest says ``"labelled": false`` (the text is then kept for reports)."""
    return (cut.custom or {}).get("labelled", True) is not False


def _table(
    cuts: Any, tokenizer: Tokenizer | None, cfg: DataConfig, report: DataReport, labels: bool
) -> UtteranceTable:
    rows: list[tuple] = []
    names = [str((c.custom or {}).get("domain", "")) for c in cuts]
    dmap = domain_map(dict(cfg.domains), [n for n in names if n])
    for c, dname in zip(cuts, names):
        try:
            if dname and dname not in dmap:
                raise DataError(f"domain {dname!r} is not in data.domains {dmap}", item=c.id)
            text = " ".join(s.text or "" for s in c.supervisions)
            use = labels and tokenizer is not None and is_labelled(c)
            toks = tokenizer.encode(text, item=c.id) if use else []
        except DataError as e:
            report.raise_or_skip(e)
            continue
        src = c.recording.sources[0] if c.recording is not None else None
        plain = src is not None and src.type == "file" and len(c.recording.sources) == 1
        sup = c.supervisions[0] if c.supervisions else None
        rows.append(
            (
                c.id,
                src.source if plain else None,
                c.start,
                c.duration,
                c.recording.sampling_rate,
                c.channel if c.recording.num_channels > 1 else None,
                tokenizer.normalizer(text) if tokenizer is not None else text,
                (sup.speaker if sup else None) or "",
                dmap.get(dname, 0),
                toks,
                c,
            )
        )
    cols = list(zip(*rows)) if rows else [[] for _ in range(11)]
    return UtteranceTable(
        ids=list(cols[0]),
        paths=list(cols[1]),
        starts=np.asarray(cols[2], dtype=np.float64),
        durations=np.asarray(cols[3], dtype=np.float64),
        sample_rates=list(cols[4]),
        channels=list(cols[5]),
        texts=list(cols[6]),
        speakers=list(cols[7]),
        domains=np.asarray(cols[8], dtype=np.int64),
        tokens=list(cols[9]),
        cuts=list(cols[10]),
    )


class _BatchMaker:
    """Turns index arrays into Batches; lives in each worker process (no shared state)."""

    def __init__(
        self, table: UtteranceTable, cfg: DataConfig, *, train: bool, stats: GlobalStats | None
    ):
        self.table, self.cfg, self.train, self.stats = table, cfg, train, stats
        self.speaker_stats: dict[str, GlobalStats] = {}
        self.sample_rate = int(cfg.features.sample_rate)
        self.fbank = NativeFbank(cfg.features)
        self.wave_aug = WaveAugmenter(cfg.augment, self.sample_rate) if train else None
        augmenting = self.wave_aug is not None and self.wave_aug.active
        self.cache: dict[int, np.ndarray] | None = (
            {} if cfg.features.cache == "memory" and not augmenting else None
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for worker processes without the in-memory feature cache: a worker would only
        fill its own copy, which ends with the pass."""
        state = dict(self.__dict__)
        if state.get("cache") is not None:
            state["cache"] = {}
        return state

    def wave(self, i: int, rng: np.random.Generator | None) -> np.ndarray:
        t = self.table
        path = t.paths[i]
        if path is None:
            x = t.cuts[i].load_audio().mean(axis=0).astype(np.float32)
            from semiasr.data.audio import resample

            x = resample(x, t.sample_rates[i], self.sample_rate)
        else:
            x = read_audio(
                path,
                start=float(t.starts[i]),
                duration=float(t.durations[i]),
                expected_sample_rate=t.sample_rates[i],
                target_sample_rate=self.sample_rate,
                channel=t.channels[i],
                item=t.ids[i],
            )
        if rng is not None and self.wave_aug is not None and self.wave_aug.active:
            x = self.wave_aug(x, rng)
        if self.cfg.features.level_db is not None:
            x = normalize_level(x, float(self.cfg.features.level_db))
        return x

    def features(self, i: int, rng: np.random.Generator | None) -> np.ndarray:
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        f = self.fbank(self.wave(i, rng))
        if f.shape[0] == 0:
            raise DataError("audio is shorter than one feature frame", item=self.table.ids[i])
        if not np.isfinite(f).all():
            raise DataError("features hold NaN or inf", item=self.table.ids[i])
        if self.cache is not None:
            self.cache[i] = f
        return f

    def __call__(
        self, indices: np.ndarray, rng: np.random.Generator | None
    ) -> tuple[Batch | None, list[tuple[str, str]]]:
        feats, keep, bad = [], [], []
        for i in indices.tolist():
            try:
                feats.append(self.features(i, rng))
                keep.append(i)
            except (DataError, OSError, RuntimeError, ValueError) as e:
                err = e if isinstance(e, DataError) else DataError(str(e), item=self.table.ids[i])
                if not self.cfg.skip_bad:
                    raise err from e
                bad.append((self.table.ids[i], str(err)))
        if not keep:
            return None, bad
        return self.collate(keep, feats, rng), bad

    def collate(
        self, keep: list[int], feats: list[np.ndarray], rng: np.random.Generator | None
    ) -> Batch:
        """VTLP, normalise each utterance, pad to (B, T, F), SpecAugment; numpy until the end."""
        t, aug = self.table, self.cfg.augment
        if self.train and rng is not None and aug.vtlp_prob > 0:
            lo, hi = min(aug.vtlp_alpha), max(aug.vtlp_alpha)
            feats = [
                vtlp(f, float(rng.uniform(lo, hi)), self.sample_rate)
                if rng.random() < aug.vtlp_prob
                else f
                for f in feats
            ]
        mode, spk = self.cfg.features.normalize, self.speaker_stats
        feats = [
            normalize_features(f, mode, self.stats, spk.get(t.speakers[i]))
            for i, f in zip(keep, feats)
        ]
        lens = [f.shape[0] for f in feats]
        x = np.zeros((len(feats), max(lens), feats[0].shape[1]), dtype=np.float32)
        for b, f in enumerate(feats):
            x[b, : f.shape[0]] = f
        if self.train and rng is not None and self.cfg.augment.spec_augment:
            spec_augment(x, lens, rng, self.cfg.augment)
        toks = [t.tokens[i] for i in keep]
        tlens = [len(s) for s in toks]
        y = np.zeros((len(toks), max(tlens)), dtype=np.int64)
        for b, s in enumerate(toks):
            y[b, : len(s)] = s
        return Batch(
            features=torch.from_numpy(x),
            feature_lengths=torch.tensor(lens, dtype=torch.int64),
            tokens=torch.from_numpy(y),
            token_lengths=torch.tensor(tlens, dtype=torch.int64),
            texts=[t.texts[i] for i in keep],
            domains=torch.from_numpy(t.domains[keep]),
            cut_ids=[t.ids[i] for i in keep],
            speakers=[t.speakers[i] for i in keep],
        )


NORMALIZE_MODES = ("utterance", "global", "speaker", "none")


def normalize_features(
    f: np.ndarray,
    mode: str,
    stats: GlobalStats | None,
    speaker_stats: GlobalStats | None = None,
) -> np.ndarray:
    """Mean/variance normalisation of one utterance's ``(T, F)`` features as ``features.normalize``
    says: "utterance" (its own statistics), "global" (``stats``), "speaker" (``speaker_stats``, the
    statistics of its speaker's utterances in the loader's splits, pooled across them; ``stats``
    where the speaker is unknown), or "none". Without the statistics a mode needs, per utterance."""
    if mode == "utterance":
        return _cmvn(f)
    if mode == "speaker" and speaker_stats is not None:
        stats = speaker_stats
    elif mode not in ("global", "speaker"):
        return f
    if stats is None:
        return _cmvn(f)
    return (f - stats.mean.astype(np.float32)) * (1.0 / stats.std).astype(np.float32)


def _cmvn(f: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Per-utterance mean/variance normalisation of ``(T, F)``: (x − μ) / sqrt(σ² + eps)."""
    mean = f.mean(axis=0, dtype=np.float64)
    var = f.var(axis=0, dtype=np.float64)
    return ((f - mean) / np.sqrt(var + eps)).astype(np.float32)


class _PlanDataset(torch.utils.data.Dataset):
    """Batch number k of the epoch's plan → (Batch or None, bad items)."""

    def __init__(
        self, maker: _BatchMaker, plan: list[np.ndarray], seed: int, epoch: int, rank: int
    ):
        self.maker, self.plan, self.seed, self.epoch, self.rank = maker, plan, seed, epoch, rank

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, k: int) -> tuple[Batch | None, list[tuple[str, str]]]:
        rng = (
            np.random.default_rng([self.seed, self.epoch, self.rank, k])
            if self.maker.train
            else None
        )
        return self.maker(self.plan[k], rng)


def _identity(x: Any) -> Any:
    return x


WORKER_STARTS = ("forkserver", "spawn", "fork")
MAX_WORKER_TIMEOUT_S = 1e6
"""The longest wait for a worker's batch that a queue accepts is 2³¹ ms (about 24 days)."""


def _worker_starts() -> tuple[str, ...]:
    """The start methods of :data:`WORKER_STARTS` this platform has (Windows: spawn only)."""
    import multiprocessing

    have = multiprocessing.get_all_start_methods()
    return tuple(m for m in WORKER_STARTS if m in have)


def _worker_context(start: str) -> Any:
    """The multiprocessing context loader workers start from; a forkserver imports this module
    once, so that each worker it forks does not import torch again."""
    import multiprocessing

    ctx = multiprocessing.get_context(start)
    if start == "forkserver":
        ctx.set_forkserver_preload([__name__])
    return ctx


class Loader:
    """Iterable of :class:`~semiasr.data.batch.Batch` for one DDP rank, resumable mid-epoch."""

    def __init__(
        self,
        table: UtteranceTable,
        cfg: DataConfig,
        *,
        train: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        feature_stats: GlobalStats | None = None,
        report: DataReport | None = None,
    ):
        self.table, self.cfg, self.train = table, cfg, train
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.report = report or DataReport(cfg.skip_bad)
        self.epoch, self.position = 0, 0
        self._resumed = False  # set by load_state_dict until the next iteration starts
        mode = cfg.features.normalize
        if mode not in NORMALIZE_MODES:
            raise ConfigError(
                f"data.features.normalize is {mode!r}; expected one of {', '.join(NORMALIZE_MODES)}",
                key="data.features.normalize",
            )
        b = cfg.batching
        if b.worker_start not in _worker_starts():
            raise ConfigError(
                f"data.batching.worker_start is {b.worker_start!r}; expected one of "
                f"{', '.join(_worker_starts())} (what this platform offers)",
                key="data.batching.worker_start",
            )
        if not 0 <= float(b.worker_timeout_s) <= MAX_WORKER_TIMEOUT_S:
            raise ConfigError(
                f"data.batching.worker_timeout_s is {b.worker_timeout_s}; expected seconds in "
                f"(0, {MAX_WORKER_TIMEOUT_S:g}], or 0 to wait without a limit",
                key="data.batching.worker_timeout_s",
            )
        aug = cfg.augment
        if aug.vtlp_prob > 0 and (
            not aug.vtlp_alpha or min(aug.vtlp_alpha) <= 0 or int(cfg.features.num_mel_bins) < 2
        ):
            raise ConfigError(
                f"data.augment.vtlp_alpha is {list(aug.vtlp_alpha)}: VTLP needs warp factors > 0 "
                f"(e.g. [0.9, 1.1]) and at least 2 mel bins",
                key="data.augment.vtlp_alpha",
            )
        self.maker = _BatchMaker(table, cfg, train=train, stats=feature_stats)
        if mode in ("global", "speaker") and feature_stats is None:
            if not train:
                raise ConfigError(
                    f"{mode} feature normalisation needs the training loader's feature_stats",
                    key="data.features.normalize",
                )
            self.maker.stats, self.maker.speaker_stats = self.compute_feature_stats()
        elif mode == "speaker":
            self.maker.speaker_stats = self.compute_feature_stats()[1]
        self._plan: list[np.ndarray] | None = None

    @property
    def feature_stats(self) -> GlobalStats | None:
        return self.maker.stats

    def compute_feature_stats(self) -> tuple[GlobalStats, dict[str, GlobalStats]]:
        """Mean and std of the un-augmented features of every utterance of this loader's table,
        over all of them and per (known) speaker."""
        dim = int(self.cfg.features.num_mel_bins)
        acc = GlobalStats.accumulator(dim)
        per: dict[str, Any] = {}
        for i in range(len(self.table)):
            try:
                f = torch.from_numpy(self.maker.features(i, None))
            except DataError as e:
                self.report.raise_or_skip(e)
                continue
            n = torch.tensor([f.shape[0]])
            acc.update(f[None], n)
            if spk := self.table.speakers[i]:
                per.setdefault(spk, GlobalStats.accumulator(dim)).update(f[None], n)
        return acc.finalize(), {k: a.finalize() for k, a in per.items()}

    def plan(self) -> list[np.ndarray]:
        """This rank's batches (index arrays into the table) for the current epoch."""
        if self._plan is None:
            b = self.cfg.batching
            self._plan = plan_batches(
                self.table.durations,
                max_duration=float(b.max_duration),
                num_buckets=int(b.num_buckets),
                shuffle=bool(self.train and b.shuffle),
                seed=self.seed,
                epoch=self.epoch,
                rank=self.rank,
                world_size=self.world_size,
            )
        return self._plan

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch to iterate; a new epoch starts at its first batch."""
        if int(epoch) != self.epoch:
            self.epoch, self.position, self._plan = int(epoch), 0, None
            self._resumed = False

    def __len__(self) -> int:
        return len(self.plan())

    def __iter__(self) -> Iterator[Batch]:
        plan = self.plan()
        resumed, self._resumed = self._resumed, False
        if not self.train:  # an evaluation pass always reads the split from its first batch,
            self.position = 0  # also after an earlier pass was left part-way (limit_batches)
        if self.position >= len(plan):
            if resumed:  # the saved epoch was complete: nothing unseen is left
                return
            self.position = 0  # another pass over the same epoch (e.g. an evaluation loader)
        ds = _PlanDataset(self.maker, plan, self.seed, self.epoch, self.rank)
        order = range(self.position, len(plan))
        b = self.cfg.batching
        workers = int(b.num_workers)
        if workers > 0:
            it: Iterator = iter(
                torch.utils.data.DataLoader(
                    ds,
                    batch_size=None,
                    sampler=order,
                    num_workers=workers,
                    collate_fn=_identity,
                    multiprocessing_context=_worker_context(str(b.worker_start)),
                    timeout=float(b.worker_timeout_s),
                    # its own generator: starting the workers then draws nothing from torch's
                    # global one, so masks and dropout do not depend on when an epoch (or a
                    # resumed run) started its workers (the batches are seeded per index anyway)
                    generator=torch.Generator().manual_seed(
                        (self.seed * 1_000_003 + self.epoch) * 1_009 + self.rank
                    ),
                )
            )
        else:
            it = (ds[k] for k in order)
        try:
            for batch, bad in it:
                self.position += 1
                for item, msg in bad:
                    self.report.bad.append((item, msg))
                    log.warning("skipped %s", msg)
                if batch is not None:
                    yield batch
        except RuntimeError as e:
            if workers > 0 and str(e).startswith("DataLoader timed out"):
                raise DataError(
                    f"the loader's workers made no batch in {float(b.worker_timeout_s):g} s "
                    f"(data.batching.worker_timeout_s): a worker is stuck or a batch is very slow",
                    item=f"batch {self.position} of epoch {self.epoch}",
                ) from e
            raise

    def state_dict(self) -> dict[str, Any]:
        """Where iteration stands: epoch, batches yielded, and what the plan was made from."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "world_size": self.world_size,
            "fingerprint": self.table.fingerprint(),
            "plan": self._plan_settings(),
        }

    def _plan_settings(self) -> dict[str, Any]:
        """The batching settings the epoch's plan is made from (besides seed, epoch and ranks)."""
        b = self.cfg.batching
        return {
            "max_duration": float(b.max_duration),
            "num_buckets": int(b.num_buckets),
            "shuffle": bool(self.train and b.shuffle),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``: the next ``__iter__`` starts at the first unseen batch."""
        if state.get("fingerprint") != self.table.fingerprint():
            raise DataError(
                "loader state was saved for other data (the utterance list differs)", item="loader"
            )
        if int(state.get("seed", self.seed)) != self.seed:
            raise ConfigError(f"loader state has seed {state['seed']}, this loader {self.seed}")
        saved, now = state.get("plan"), self._plan_settings()
        if saved is not None and saved != now:
            changed = ", ".join(
                f"{k} {saved.get(k)!r} → {v!r}" for k, v in now.items() if saved.get(k) != v
            )
            log.warning(
                "resuming with other batching settings (%s): this epoch's batches are planned "
                "anew, so the rest of it may repeat or skip some utterances; exact from the next "
                "epoch on",
                changed,
            )
        self.epoch, self._plan = int(state["epoch"]), None
        position = int(state["position"])
        old_ws = int(state.get("world_size", self.world_size))
        if old_ws != self.world_size:
            position = position * old_ws // self.world_size
            log.warning(
                "resuming with %d ranks instead of %d: restarting at the equivalent batch %d",
                self.world_size,
                old_ws,
                position,
            )
        self.position = position
        self._resumed = True


def build_dataloader(
    data_cfg: DataConfig,
    split_names: Sequence[str],
    tokenizer: Tokenizer | None,
    *,
    train: bool,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    feature_stats: GlobalStats | None = None,
    labels: bool = True,
) -> Loader:
    """The loader over ``split_names`` of ``data_cfg.root`` (see :func:`load_splits`).

    Training loaders shuffle and augment; evaluation loaders go shortest first with no augmentation.
    With ``features.normalize`` "global" or "speaker" a training loader computes
    ``loader.feature_stats`` (save them with the model) and evaluation loaders must be given them;
    with "speaker" every loader also computes each speaker's statistics over its own utterances
    (unsupervised: audio only), and the global ones serve utterances with no speaker. Token ids are empty
    (``token_lengths`` 0) for utterances marked ``"labelled": false``, and for all with
    ``labels=False`` or no tokenizer (unsupervised training); ``texts`` keep the references.
    """
    report = DataReport(data_cfg.skip_bad)
    cuts = load_splits(data_cfg, split_names, report)
    table = _table(cuts, tokenizer, data_cfg, report, labels)
    if len(table) == 0:
        raise DataError(f"no usable utterances in {list(split_names)} under {data_cfg.root}")
    if report.bad:
        log.warning("%s", report.summary())
    return Loader(
        table,
        data_cfg,
        train=train,
        seed=seed,
        rank=rank,
        world_size=world_size,
        feature_stats=feature_stats,
        report=report,
    )


def corpus_texts(data_cfg: DataConfig, split_names: Sequence[str]) -> list[str]:
    """The transcripts of the labelled utterances of ``split_names`` (to train a tokenizer on),
    without touching the audio."""
    report = DataReport(data_cfg.skip_bad)
    out = []
    for s in split_names:
        for c in load_split(data_cfg.root, s, report=report):
            if is_labelled(c):
                out.append(" ".join(sup.text or "" for sup in c.supervisions))
    return out
