"""Manifests: corpora described as Lhotse ``CutSet``s, imported from the formats found on disk.

One cut per utterance: a ``MonoCut`` over a ``Recording`` (one audio file, read through soundfile)
with one ``SupervisionSegment`` holding ``text`` and ``speaker``; any other field of the source
(``domain``, ``condition``, ``voice``, ``suggested_split``, ...) is kept in ``cut.custom``.

Importers (none reads audio; :func:`validate_cuts` checks the files):

- :func:`import_jsonl` — semiasr's JSONL: ``id``, ``audio`` (relative to the manifest's folder),
  ``text``, ``speaker``, ``duration``, ``sample_rate``, optional ``start`` and ``channel``, extras.
- :func:`import_kaldi_dir` — ``wav.scp``, ``text``, optional ``utt2spk`` and ``segments``.
- :func:`import_nemo` — NeMo JSON lines: ``audio_filepath``, ``duration``, ``text``, optional
  ``offset``.
- :func:`import_folder` — audio files with a ``.txt`` transcript of the same name beside each.
- :func:`prepare_recipe` — a Lhotse corpus recipe on a corpus already on disk.

Bad items (missing fields, duplicate ids, missing/unreadable/empty/truncated audio, a sample rate
other than the manifest's, too short or too long) raise :class:`~semiasr.errors.DataError` naming
the item, or with ``skip_bad=True`` are skipped and listed in a :class:`DataReport`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semiasr.data.audio import audio_info
from semiasr.errors import DataError

__all__ = [
    "AUDIO_SUFFIXES",
    "DataReport",
    "import_folder",
    "import_jsonl",
    "import_kaldi_dir",
    "import_nemo",
    "is_manifest_path",
    "load_manifest",
    "load_split",
    "make_cut",
    "prepare_recipe",
    "split_label",
    "validate_cuts",
    "write_jsonl",
]

log = logging.getLogger(__name__)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".sph", ".nist")


@dataclass
class DataReport:
    """The items a bulk step skipped, each with its problem; ``raise_or_skip`` decides."""

    skip_bad: bool = False
    bad: list[tuple[str, str]] = field(default_factory=list)

    def raise_or_skip(self, err: DataError) -> None:
        if not self.skip_bad:
            raise err
        self.bad.append((err.item or "?", str(err)))
        log.warning("skipped %s", err)

    def summary(self) -> str:
        if not self.bad:
            return "no bad items"
        lines = [f"{len(self.bad)} bad item(s) skipped:"] + [f"  {msg}" for _, msg in self.bad]
        return "\n".join(lines)


def make_cut(
    cut_id: str,
    path: str | Path,
    *,
    sample_rate: int,
    duration: float,
    text: str,
    speaker: str = "",
    start: float = 0.0,
    channel: int = 0,
    num_channels: int = 1,
    recording_id: str | None = None,
    recording_duration: float | None = None,
    custom: dict[str, Any] | None = None,
) -> Any:
    """One ``MonoCut`` for ``duration`` s of ``path`` from ``start``, with its transcript."""
    from lhotse import AudioSource, MonoCut, Recording, SupervisionSegment

    rec_dur = recording_duration if recording_duration is not None else start + duration
    rec = Recording(
        id=recording_id or cut_id,
        sources=[AudioSource(type="file", channels=list(range(num_channels)), source=str(path))],
        sampling_rate=int(sample_rate),
        num_samples=round(rec_dur * sample_rate),
        duration=rec_dur,
    )
    sup = SupervisionSegment(
        id=cut_id,
        recording_id=rec.id,
        start=start,
        duration=duration,
        channel=channel,
        text=text,
        speaker=speaker or None,
    )
    return MonoCut(
        id=cut_id,
        start=start,
        duration=duration,
        channel=channel,
        recording=rec,
        supervisions=[sup],
        custom=dict(custom or {}),
    )


def _cutset(cuts: Iterable[Any]) -> Any:
    from lhotse import CutSet

    return CutSet.from_cuts(list(cuts))


def _read_jsonl(path: Path, report: DataReport) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise DataError(f"manifest {path} does not exist", item=str(path))
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                report.raise_or_skip(
                    DataError(f"line {n} is not valid JSON ({e})", item=f"{path}:{n}")
                )
                continue
            yield n, row


def _require(row: dict[str, Any], keys: Iterable[str], item: str) -> None:
    missing = [k for k in keys if row.get(k) is None]
    if missing:
        raise DataError(f"manifest entry lacks field(s) {', '.join(missing)}", item=item)


class _Ids:
    def __init__(self, report: DataReport):
        self.seen: set[str] = set()
        self.report = report

    def fresh(self, cut_id: str, where: str) -> bool:
        if cut_id in self.seen:
            self.report.raise_or_skip(DataError(f"duplicate utterance id ({where})", item=cut_id))
            return False
        self.seen.add(cut_id)
        return True


_JSONL_CORE = {"id", "audio", "text", "speaker", "duration", "sample_rate", "start", "channel"}


def import_jsonl(
    path: str | Path,
    *,
    root: str | Path | None = None,
    split: str | None = None,
    skip_bad: bool = False,
    report: DataReport | None = None,
) -> Any:
    """semiasr JSONL → CutSet. ``audio`` is relative to ``root`` (default: the manifest's folder).

    ``split``: keep only rows whose ``suggested_split`` (or ``split``) equals it.
    """
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    report = report or DataReport(skip_bad)
    ids, cuts = _Ids(report), []
    for n, row in _read_jsonl(path, report):
        if split is not None and row.get("suggested_split", row.get("split")) != split:
            continue
        item = str(row.get("id") or f"{path}:{n}")
        try:
            _require(row, ("id", "audio", "text", "duration", "sample_rate"), item)
            dur, sr = float(row["duration"]), int(row["sample_rate"])
            if not (math.isfinite(dur) and dur > 0):
                raise DataError(f"duration {row['duration']!r} is not a positive number", item=item)
            start = float(row.get("start", 0.0))
            if not (math.isfinite(start) and start >= 0):
                raise DataError(f"start {row['start']!r} is not a number >= 0", item=item)
            # a "channel" field selects that channel (of a file with channel + 1 or more); without
            # it every channel of the file is averaged
            channel = int(row["channel"]) if "channel" in row else None
            if channel is not None and channel < 0:
                raise DataError(f"channel {row['channel']!r} is negative", item=item)
        except (DataError, ValueError, TypeError) as e:
            err = e if isinstance(e, DataError) else DataError(f"bad field value ({e})", item=item)
            report.raise_or_skip(err)
            continue
        if not ids.fresh(item, f"{path}:{n}"):
            continue
        audio = Path(row["audio"])
        cuts.append(
            make_cut(
                item,
                audio if audio.is_absolute() else root / audio,
                sample_rate=sr,
                duration=dur,
                text=str(row["text"]),
                speaker=str(row.get("speaker") or ""),
                start=start,
                channel=channel or 0,
                num_channels=1 if channel is None else max(channel + 1, 2),
                custom={k: v for k, v in row.items() if k not in _JSONL_CORE},
            )
        )
    return _cutset(cuts)


def _kaldi_table(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            parts = line.strip().split(maxsplit=1)
            if parts:
                out[parts[0]] = parts[1] if len(parts) > 1 else ""
    return out


def import_kaldi_dir(
    folder: str | Path, *, skip_bad: bool = False, report: DataReport | None = None
) -> Any:
    """A Kaldi data dir → CutSet. ``wav.scp`` entries must be plain file paths (no pipes)."""
    folder = Path(folder)
    report = report or DataReport(skip_bad)
    for name in ("wav.scp", "text"):
        if not (folder / name).is_file():
            raise DataError(f"Kaldi data dir {folder} has no {name}", item=str(folder))
    wavs = _kaldi_table(folder / "wav.scp")
    texts = _kaldi_table(folder / "text")
    spk = _kaldi_table(folder / "utt2spk") if (folder / "utt2spk").is_file() else {}
    if (folder / "segments").is_file():
        segs = {}
        for u, rest in _kaldi_table(folder / "segments").items():
            try:
                rec, s, e = rest.split()
                segs[u] = (rec, float(s), float(e))
            except ValueError:
                report.raise_or_skip(
                    DataError(
                        f"{folder / 'segments'}: line {u!r} needs <recording> <start> <end>, "
                        f"got {rest!r}",
                        item=u,
                    )
                )
    else:
        segs = {u: (u, 0.0, None) for u in wavs}
    infos: dict[str, Any] = {}
    cuts = []
    for utt, (rec, start, end) in segs.items():
        try:
            if rec not in wavs:
                raise DataError(f"recording {rec} is not in wav.scp", item=utt)
            wav = wavs[rec]
            if wav.endswith("|"):
                raise DataError(f"wav.scp entry is a command ({wav!r}); only files", item=utt)
            if utt not in texts:
                raise DataError("utterance has no line in text", item=utt)
            if rec not in infos:
                infos[rec] = audio_info(_rel(folder, wav), item=utt)
            info = infos[rec]
            dur = (end if end is not None else info.duration) - start
            cuts.append(
                make_cut(
                    utt,
                    _rel(folder, wav),
                    sample_rate=info.sample_rate,
                    duration=dur,
                    text=texts[utt],
                    speaker=spk.get(utt, ""),
                    start=start,
                    num_channels=info.channels,
                    recording_id=rec,
                    recording_duration=info.duration,
                )
            )
        except DataError as e:
            report.raise_or_skip(e)
    return _cutset(cuts)


def _rel(base: Path, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else base / q


def import_nemo(
    path: str | Path, *, skip_bad: bool = False, report: DataReport | None = None
) -> Any:
    """NeMo JSON-lines manifest → CutSet; relative ``audio_filepath``s start at its folder.

    NeMo manifests carry no sample rate: it is read from each file's header.
    """
    path = Path(path)
    report = report or DataReport(skip_bad)
    ids, cuts = _Ids(report), []
    for n, row in _read_jsonl(path, report):
        audio = str(row.get("audio_filepath", ""))
        item = str(row.get("id") or row.get("utt_id") or Path(audio).stem or f"{path}:{n}")
        try:
            offset = float(row.get("offset") or 0.0)
        except (ValueError, TypeError) as e:
            report.raise_or_skip(DataError(f"bad field value offset ({e})", item=item))
            continue
        if offset:
            item = f"{item}_{offset:.2f}"
        try:
            _require(row, ("audio_filepath", "duration", "text"), item)
            if not ids.fresh(item, f"{path}:{n}"):
                continue
            info = audio_info(_rel(path.parent, audio), item=item)
            cuts.append(
                make_cut(
                    item,
                    _rel(path.parent, audio),
                    sample_rate=info.sample_rate,
                    duration=float(row["duration"]),
                    text=str(row["text"]),
                    speaker=str(row.get("speaker") or ""),
                    start=offset,
                    num_channels=info.channels,
                    recording_id=Path(audio).stem,
                    recording_duration=info.duration,
                    custom={
                        k: v
                        for k, v in row.items()
                        if k not in {"audio_filepath", "duration", "text", "offset", "speaker"}
                    },
                )
            )
        except DataError as e:
            report.raise_or_skip(e)
    return _cutset(cuts)


def import_folder(
    folder: str | Path, *, skip_bad: bool = False, report: DataReport | None = None
) -> Any:
    """Every audio file under ``folder`` with a ``<stem>.txt`` transcript beside it → CutSet.

    Ids are the relative paths without suffix, "/" replaced by "_"; the speaker is the parent
    folder's name when files sit in sub-folders.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder", item=str(folder))
    report = report or DataReport(skip_bad)
    ids, cuts = _Ids(report), []
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    for p in files:
        rel = p.relative_to(folder).with_suffix("")
        item = "_".join(rel.parts)
        try:
            txt = p.with_suffix(".txt")
            if not txt.is_file():
                raise DataError(f"no transcript {txt.name} beside {p.name}", item=item)
            if not ids.fresh(item, str(p)):
                continue
            info = audio_info(p, item=item)
            cuts.append(
                make_cut(
                    item,
                    p,
                    sample_rate=info.sample_rate,
                    duration=info.duration,
                    text=txt.read_text(encoding="utf-8").strip(),
                    speaker=rel.parts[-2] if len(rel.parts) > 1 else "",
                    num_channels=info.channels,
                )
            )
        except DataError as e:
            report.raise_or_skip(e)
    return _cutset(cuts)


def validate_cuts(
    cuts: Any,
    *,
    min_duration: float = 0.05,
    max_duration: float = 60.0,
    check_audio: bool = True,
    skip_bad: bool = False,
    report: DataReport | None = None,
) -> Any:
    """Check every cut; return the CutSet of good ones (bad ones raise or, with ``skip_bad``, go).

    Checks: unique ids; duration in [min_duration, max_duration]; and, with ``check_audio``, that
    the file exists, is non-empty and readable, has the manifest's sample rate, and holds the whole
    cut.
    """
    report = report or DataReport(skip_bad)
    ids, good = _Ids(report), []
    for c in cuts:
        try:
            if not ids.fresh(c.id, "manifest"):
                continue
            if not c.duration >= min_duration:
                raise DataError(f"duration {c.duration:.3f} s is below {min_duration} s", item=c.id)
            if not c.duration <= max_duration:
                raise DataError(
                    f"duration {c.duration:.1f} s is over the limit of {max_duration} s", item=c.id
                )
            if check_audio:
                _check_audio(c)
            good.append(c)
        except DataError as e:
            report.raise_or_skip(e)
    return _cutset(good)


def _check_audio(c: Any) -> None:
    rec = c.recording
    src = rec.sources[0]
    if src.type != "file":
        return
    info = audio_info(src.source, item=c.id)
    if info.sample_rate != rec.sampling_rate:
        raise DataError(
            f"sample rate of {src.source} is {info.sample_rate} Hz, "
            f"the manifest says {rec.sampling_rate} Hz",
            item=c.id,
        )
    if info.frames == 0:
        raise DataError(f"audio file {src.source} holds no samples", item=c.id)
    if rec.num_channels > 1 and not 0 <= c.channel < info.channels:
        raise DataError(
            f"audio file {src.source} has {info.channels} channel(s); the manifest asks for "
            f"channel {c.channel}",
            item=c.id,
        )
    slack = max(2, int(0.02 * info.sample_rate))
    need = round((c.start + c.duration) * info.sample_rate)
    if info.frames < need - slack:
        raise DataError(
            f"audio file {src.source} is truncated or shorter than the manifest says: "
            f"{info.duration:.3f} s, the cut needs {c.start + c.duration:.3f} s",
            item=c.id,
        )


def load_manifest(
    path_or_dir: str | Path,
    split: str | None = None,
    *,
    skip_bad: bool = False,
    report: DataReport | None = None,
) -> Any:
    """The CutSet of ``split`` from a file or a corpus folder (no audio is read).

    A file: semiasr JSONL (``.jsonl``), a Lhotse cut manifest (``.jsonl.gz`` or cut objects), or a
    NeMo manifest (rows with ``audio_filepath``); ``split`` filters on ``suggested_split``. A
    folder: its ``<split>.jsonl`` (synthetic corpus), else ``cuts_<split>.jsonl.gz`` /
    ``<split>.jsonl.gz`` (Lhotse), else ``manifest.jsonl`` rows whose ``suggested_split`` is
    ``split`` (FSDD, yesno), else a Kaldi dir (``<dir>/<split>/wav.scp`` or ``<dir>/wav.scp``).
    """
    p = Path(path_or_dir)
    report = report or DataReport(skip_bad)
    if p.is_dir():
        for name in (f"{split}.jsonl", f"cuts_{split}.jsonl.gz", f"{split}.jsonl.gz"):
            if split is not None and (p / name).is_file():
                return load_manifest(p / name, None, report=report)
        if (p / "manifest.jsonl").is_file():
            return load_manifest(p / "manifest.jsonl", split, report=report)
        for d in ([p / split] if split else []) + [p]:
            if (d / "wav.scp").is_file():
                return import_kaldi_dir(d, report=report)
        raise DataError(
            f"found no manifest for split {split!r} in {p} (looked for {split}.jsonl, "
            f"cuts_{split}.jsonl.gz, manifest.jsonl, a Kaldi dir)",
            item=str(p),
        )
    if not p.is_file():
        raise DataError(f"manifest {p} does not exist", item=str(p))
    kind = _sniff(p)
    if kind == "lhotse":
        from lhotse import CutSet

        cuts = CutSet.from_file(p)
        if split is not None:
            cuts = cuts.filter(lambda c: (c.custom or {}).get("suggested_split") == split)
        return cuts.to_eager()
    if kind == "nemo":
        return import_nemo(p, report=report)
    return import_jsonl(p, split=split, report=report)


MANIFEST_SUFFIXES = (".jsonl", ".jsonl.gz", ".json")


def is_manifest_path(split: str) -> bool:
    """Whether a split name in a config (``data.train`` …) names a manifest file instead of a
    split of ``data.root``: it ends in .jsonl, .jsonl.gz or .json (e.g. the output of
    ``semiasr pseudo-label``)."""
    return str(split).endswith(MANIFEST_SUFFIXES)


def split_label(split: str) -> str:
    """A split's name for report folders: the split itself, or for a manifest path
    ``manifest-<file name without suffix>`` (so that ``runs/pl/test.jsonl`` does not report over
    the corpus split ``test``)."""
    if not is_manifest_path(split):
        return str(split)
    name = Path(split).name
    for suffix in sorted(MANIFEST_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return f"manifest-{name}"


def load_split(
    root: str | Path, split: str, *, skip_bad: bool = False, report: DataReport | None = None
) -> Any:
    """The CutSet of one split of a config: a manifest file when ``split`` is a path to one
    (relative to the working directory; see :func:`is_manifest_path`), else ``split`` of the
    corpus at ``root``."""
    if is_manifest_path(split):
        if not Path(split).is_file():
            raise DataError(
                f"split {split!r} names a manifest file, and {split} does not exist", item=split
            )
        return load_manifest(split, None, skip_bad=skip_bad, report=report)
    return load_manifest(root, split, skip_bad=skip_bad, report=report)


def _sniff(p: Path) -> str:
    if p.name.endswith(".gz"):
        return "lhotse"
    with p.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError:
                    return "jsonl"
                if isinstance(row, dict) and "audio_filepath" in row:
                    return "nemo"
                if isinstance(row, dict) and ("recording" in row or row.get("type") == "MonoCut"):
                    return "lhotse"
                return "jsonl"
    return "jsonl"


def write_jsonl(cuts: Any, path: str | Path) -> int:
    """Write ``cuts`` as semiasr JSONL, audio paths relative to the file's folder; return the count.

    Only cuts over one audio file can be written; others raise DataError.
    """
    import os

    from semiasr.rundir import atomic_write_text

    path = Path(path)
    base = path.parent.resolve()
    lines = []
    for c in cuts:
        src = c.recording.sources[0]
        if src.type != "file" or len(c.recording.sources) != 1:
            raise DataError("only cuts over one audio file can be written as JSONL", item=c.id)
        audio = Path(src.source).resolve()
        sup = c.supervisions[0] if c.supervisions else None
        row: dict[str, Any] = {
            "id": c.id,
            "audio": os.path.relpath(audio, base),
            "text": " ".join(s.text or "" for s in c.supervisions).strip(),
            "speaker": (sup.speaker if sup else None) or "",
            "duration": round(c.duration, 6),
            "sample_rate": c.recording.sampling_rate,
        }
        if c.start:
            row["start"] = c.start
        if c.channel or c.recording.num_channels > 1:  # channel 0 of several stays explicit
            row["channel"] = c.channel
        row.update(c.custom or {})
        lines.append(json.dumps(row, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return len(lines)


def prepare_recipe(name: str, corpus_dir: str | Path, output_dir: str | Path) -> dict[str, Path]:
    """Run Lhotse's ``prepare_<name>`` on a corpus already on disk; write ``cuts_<split>.jsonl.gz``.

    Nothing is downloaded. Returns the written file of each split.
    """
    import importlib

    from lhotse import CutSet

    try:
        recipes = importlib.import_module("lhotse.recipes")
        fn = getattr(recipes, f"prepare_{name}")
    except (ImportError, AttributeError) as e:
        raise DataError(f"Lhotse has no recipe named {name!r}", item=name) from e
    corpus_dir, output_dir = Path(corpus_dir), Path(output_dir)
    if not corpus_dir.is_dir():
        raise DataError(f"corpus folder {corpus_dir} does not exist", item=name)
    output_dir.mkdir(parents=True, exist_ok=True)
    manifests = fn(corpus_dir, output_dir=output_dir)
    if "recordings" in manifests:  # a recipe without splits
        manifests = {"all": manifests}
    out: dict[str, Path] = {}
    for split, m in manifests.items():
        cuts = CutSet.from_manifests(
            recordings=m["recordings"], supervisions=m.get("supervisions")
        ).trim_to_supervisions(keep_overlapping=False)
        dest = output_dir / f"cuts_{split}.jsonl.gz"
        cuts.to_file(dest)
        out[str(split)] = dest
    return out
