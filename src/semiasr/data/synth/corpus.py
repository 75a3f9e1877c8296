"""Generate the built-in two-domain speech corpus on disk and describe it in a dataset card.

Layout of ``<out>/``::

    .semiasr-synth           marker: this folder is a semiasr synthetic corpus (written first)
    audio/<split>/<id>.wav   16 kHz mono 16-bit PCM
    <split>.jsonl            one manifest line per utterance (see docs/corpus.md)
    README.md                the dataset card for people
    card.json                the dataset card for programs; written last, so a folder without it
                             is an interrupted run and is regenerated

Splits: source_train, target_train, target_unlabelled (text kept, ``"labelled": false``),
source_dev and target_dev (for tuning and validation), source_test and target_test (dev and test on
held-out voices).
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semiasr.data.synth.espeak import Espeak
from semiasr.data.synth.plan import (
    DOMAIN_CONDITIONS,
    DRR_RANGE_DB,
    RT60_RANGE_S,
    SNR_RANGE_DB,
    SPLITS,
    UtteranceSpec,
    plan_corpus,
)
from semiasr.data.synth.render import SAMPLE_RATE, babble_bank, render_chunk, worker_init
from semiasr.data.synth.text import DOMAIN_GENERATORS, vocabulary
from semiasr.data.synth.voices import voice_bank
from semiasr.errors import DataError
from semiasr.rundir import atomic_write_text

__all__ = ["FORMAT_VERSION", "CorpusCard", "ensure_corpus", "is_complete", "synthesize_corpus"]

FORMAT_VERSION = 2  # 2: source_dev and target_dev added (format 1's splits are unchanged)
"""Bumped whenever the same seed and scale would give different files."""
MARKER = ".semiasr-synth"
CARD = "card.json"
CHUNK = 8  # utterances per worker task


@dataclass(frozen=True)
class CorpusCard:
    """The dataset card of a generated corpus (``card.json``) and where the corpus is."""

    path: Path
    data: dict[str, Any]

    @property
    def seed(self) -> int:
        return int(self.data["seed"])

    @property
    def scale(self) -> float:
        return float(self.data["scale"])

    @property
    def splits(self) -> dict[str, dict[str, Any]]:
        return self.data["splits"]

    def hours(self, split: str) -> float:
        return float(self.splits[split]["hours"])

    def manifest(self, split: str) -> Path:
        """Path of ``<split>.jsonl``."""
        return self.path / f"{split}.jsonl"

    @classmethod
    def load(cls, out_dir: str | Path) -> CorpusCard:
        path = Path(out_dir)
        try:
            data = json.loads((path / CARD).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(f"no readable {CARD} ({e})", item=str(path)) from e
        return cls(path=path, data=data)


def is_complete(out_dir: str | Path) -> bool:
    """Whether ``out_dir`` holds a finished corpus (its card.json exists and parses)."""
    try:
        CorpusCard.load(out_dir)
    except DataError:
        return False
    return True


def _prepare_folder(out: Path, force: bool) -> None:
    """Make ``out`` an empty folder holding only the marker, or refuse."""
    if out.exists() and not out.is_dir():
        raise DataError("exists and is not a folder", item=str(out))
    if out.exists() and any(out.iterdir()):
        ours = (out / MARKER).exists()
        if not ours:
            raise DataError(
                "exists and is not a semiasr synthetic corpus; refusing to overwrite it",
                item=str(out),
            )
        if is_complete(out) and not force:
            raise DataError("already holds a corpus; pass --force to regenerate it", item=str(out))
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("semiasr synthetic corpus; see card.json\n")


def _chunks(
    out: Path, plan: dict[str, list[UtteranceSpec]]
) -> list[tuple[str, list[UtteranceSpec]]]:
    specs = [s for split in plan.values() for s in split]
    return [(str(out), specs[i : i + CHUNK]) for i in range(0, len(specs), CHUNK)]


def _render_all(
    out: Path, plan: dict[str, list[UtteranceSpec]], seed: int, workers: int, progress: bool
) -> dict[str, int]:
    """Render every planned utterance; returns id -> number of samples."""
    bank = babble_bank(seed, Espeak())
    tasks = _chunks(out, plan)
    total = sum(len(specs) for _, specs in tasks)
    results: dict[str, int] = {}
    with _progress_bar(progress, total) as advance:
        if workers <= 1:
            worker_init(bank)
            for task in tasks:
                results.update(render_chunk(task))
                advance(len(task[1]))
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(workers, initializer=worker_init, initargs=(bank,)) as pool:
                for done in pool.imap_unordered(render_chunk, tasks):
                    results.update(done)
                    advance(len(done))
                pool.close()
                pool.join()
    return results


@contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)`` for a rich progress bar over ``total`` utterances (a no-op when
    ``enabled`` is False)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress("[progress.description]{task.description}", *columns) as bar:
        task = bar.add_task("synthesising utterances", total=total)
        yield lambda n: bar.advance(task, n)


def manifest_record(spec: UtteranceSpec, num_samples: int) -> dict[str, Any]:
    """One manifest line (see docs/corpus.md for the fields)."""
    record: dict[str, Any] = {
        "id": spec.id,
        "audio": spec.audio,
        "text": spec.text,
        "speaker": spec.voice.id,
        "duration": round(num_samples / SAMPLE_RATE, 6),
        "sample_rate": SAMPLE_RATE,
        "suggested_split": SPLITS[spec.split].suggested_split,
        "domain": spec.domain,
        "labelled": spec.labelled,
        "condition": spec.condition,
        "voice": spec.voice.name,
        "accent": spec.voice.accent,
        "generator": spec.generator,
        "rate_wpm": spec.rate_wpm,
        "pitch": spec.pitch,
    }
    if spec.condition == "noisy":
        record.update(snr_db=spec.snr_db, noise=spec.noise, noise_beta=spec.noise_beta)
    if spec.condition == "reverb":
        record.update(rt60_s=spec.rt60_s, drr_db=spec.drr_db)
    return record


def _oov_rate(texts: list[str], known: set[str]) -> float:
    tokens = [w for t in texts for w in t.split()]
    return round(sum(w not in known for w in tokens) / max(1, len(tokens)), 4)


def build_card(
    seed: int, scale: float, manifests: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """The content of card.json: sizes, vocabularies, OOV rates, voices and conditions."""
    texts = {name: [r["text"] for r in rows] for name, rows in manifests.items()}
    by_domain: dict[str, list[str]] = {"source": [], "target": []}
    for name, rows in texts.items():
        by_domain[SPLITS[name].domain].extend(rows)
    source_vocab, train_vocab = vocabulary(by_domain["source"]), vocabulary(texts["source_train"])
    splits = {}
    for name, rows in manifests.items():
        spec = SPLITS[name]
        train_texts = set(texts["source_train" if spec.domain == "source" else "target_train"])
        splits[name] = {
            "manifest": f"{name}.jsonl",
            "domain": spec.domain,
            "labelled": spec.labelled,
            "suggested_split": spec.suggested_split,
            "hours": round(sum(r["duration"] for r in rows) / 3600.0, 4),
            "utterances": len(rows),
            "speakers": sorted({r["speaker"] for r in rows}),
            "conditions": dict(sorted(Counter(r["condition"] for r in rows).items())),
            "generators": dict(sorted(Counter(r["generator"] for r in rows).items())),
            "vocabulary": len(vocabulary(texts[name])),
            "oov_rate_vs_source_train": _oov_rate(texts[name], train_vocab),
        }
        if spec.suggested_split in ("dev", "test"):
            seen = sum(t in train_texts for t in texts[name]) / max(1, len(rows))
            splits[name]["sentences_also_in_train"] = round(seen, 4)
        if spec.suggested_split == "dev":
            tests = {
                t for n, rows in texts.items() if SPLITS[n].suggested_split == "test" for t in rows
            }
            splits[name]["sentences_also_in_test"] = round(
                sum(t in tests for t in texts[name]) / max(1, len(rows)), 4
            )
    train_voices, test_voices = voice_bank(seed)
    return {
        "name": "semiasr-synth",
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "scale": scale,
        "sample_rate": SAMPLE_RATE,
        "hours": round(sum(s["hours"] for s in splits.values()), 4),
        "utterances": sum(s["utterances"] for s in splits.values()),
        "splits": splits,
        "vocabulary": {
            "overall": len(vocabulary(t for rows in texts.values() for t in rows)),
            "source": len(source_vocab),
            "target": len(vocabulary(by_domain["target"])),
        },
        "oov": {
            "target_tokens_vs_source": _oov_rate(by_domain["target"], source_vocab),
            "target_types_vs_source": round(
                len(vocabulary(by_domain["target"]) - source_vocab)
                / max(1, len(vocabulary(by_domain["target"]))),
                4,
            ),
            "target_tokens_vs_source_train": _oov_rate(by_domain["target"], train_vocab),
        },
        "domains": {
            d: {"generators": DOMAIN_GENERATORS[d], "conditions": DOMAIN_CONDITIONS[d]}
            for d in ("source", "target")
        },
        "conditions": {
            "clean": "speech with a faint white noise floor 60-70 dB below it",
            "noisy": f"coloured (1/f^beta, beta 0-2), babble (3-7 synthetic talkers) or both, "
            f"utterance SNR uniform {SNR_RANGE_DB[0]:g}-{SNR_RANGE_DB[1]:g} dB",
            "reverb": f"synthetic exponentially decaying RIR, RT60 {RT60_RANGE_S[0]:g}-"
            f"{RT60_RANGE_S[1]:g} s, direct-to-reverberant {DRR_RANGE_DB[0]:g} to "
            f"{DRR_RANGE_DB[1]:g} dB",
            "telephone": "300-3400 Hz band-pass, 8 kHz with 8-bit mu-law, back to 16 kHz",
        },
        "voices": {
            "train": [v.as_dict() for v in train_voices],
            "test": [v.as_dict() for v in test_voices],
        },
    }


def _readme(card: dict[str, Any]) -> str:
    lines = [
        "# semiasr synthetic two-domain speech corpus",
        "",
        f"Generated by `semiasr data synth --seed {card['seed']} --scale {card['scale']:g}` "
        f"(format {card['format_version']}). Speech synthesised with eSpeak NG, 16 kHz mono "
        "16-bit PCM. Text from semiasr's own templates and word lists. See docs/corpus.md.",
        "",
        "| split | domain | labelled | hours | utterances | speakers | conditions | vocabulary | "
        "OOV vs source_train |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in card["splits"].items():
        conds = ", ".join(f"{k} {v}" for k, v in s["conditions"].items())
        lines.append(
            f"| {name} | {s['domain']} | {'yes' if s['labelled'] else 'no'} | {s['hours']:.3f} | "
            f"{s['utterances']} | {len(s['speakers'])} | {conds} | {s['vocabulary']} | "
            f"{s['oov_rate_vs_source_train']:.1%} |"
        )
    v, o = card["vocabulary"], card["oov"]
    lines += [
        "",
        f"Vocabulary: {v['overall']} words overall, {v['source']} in source text, {v['target']} in "
        f"target text. {o['target_tokens_vs_source']:.1%} of target word tokens "
        f"({o['target_types_vs_source']:.1%} of target word types) never occur in source text.",
        "",
        "Source domain: "
        + ", ".join(card["domains"]["source"]["generators"])
        + "; target domain: "
        + ", ".join(card["domains"]["target"]["generators"])
        + ".",
        "",
        "Conditions:",
        *[f"- {k}: {d}" for k, d in card["conditions"].items()],
        "",
        "Voices (train; test voices are never heard in training):",
        *[
            f"- {x['id']}: {x['accent']}, {x['rate_wpm']} wpm, pitch {x['pitch']}"
            for x in card["voices"]["train"]
        ],
        "",
        "Test voices:",
        *[
            f"- {x['id']}: {x['accent']}, {x['rate_wpm']} wpm, pitch {x['pitch']}"
            for x in card["voices"]["test"]
        ],
        "",
    ]
    return "\n".join(lines)


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def synthesize_corpus(
    out_dir: str | Path,
    seed: int = 0,
    scale: float = 1.0,
    workers: int = 2,
    progress: bool = True,
    *,
    force: bool = False,
) -> CorpusCard:
    """Generate the corpus under ``out_dir`` and return its card.

    ``scale`` multiplies every split's size (1.0: about 2 h source train, 20 min target train, 1 h
    target unlabelled, 15 min per test set). An interrupted earlier run (no card.json) is replaced;
    a finished corpus is replaced only with ``force``; a folder that is not a semiasr corpus never.
    Output is identical for the same seed and scale, whatever ``workers``.
    """
    if not scale > 0:
        raise DataError(f"scale must be > 0, got {scale}")
    out = Path(out_dir)
    _prepare_folder(out, force)
    plan = plan_corpus(seed, scale)
    samples = _render_all(out, plan, seed, max(1, int(workers)), progress)
    manifests = {
        name: [manifest_record(spec, samples[spec.id]) for spec in specs]
        for name, specs in plan.items()
    }
    for name, rows in manifests.items():
        atomic_write_text(out / f"{name}.jsonl", _jsonl(rows))
    card = build_card(seed, scale, manifests)
    atomic_write_text(out / "README.md", _readme(card))
    atomic_write_text(out / CARD, json.dumps(card, indent=2) + "\n")
    return CorpusCard(path=out, data=card)


def ensure_corpus(
    out_dir: str | Path, seed: int = 0, scale: float = 1.0, workers: int = 2, progress: bool = True
) -> Path:
    """``out_dir`` holding the corpus for ``(seed, scale)``: generated when absent or incomplete,
    reused when complete. A complete corpus made with another seed, scale or format raises
    DataError rather than being replaced."""
    out = Path(out_dir)
    if is_complete(out):
        card = CorpusCard.load(out)
        want = (seed, float(scale), FORMAT_VERSION)
        have = (card.seed, card.scale, card.data.get("format_version"))
        if have != want:
            raise DataError(
                f"holds a synthetic corpus with seed {have[0]}, scale {have[1]:g}, format "
                f"{have[2]}; wanted seed {seed}, scale {scale:g}, format {FORMAT_VERSION}. "
                "Remove it, pick another folder, or run `semiasr data synth --force`",
                item=str(out),
            )
        return out
    synthesize_corpus(out, seed=seed, scale=scale, workers=workers, progress=progress)
    return out


def iter_manifest(out_dir: str | Path, split: str) -> Iterator[dict[str, Any]]:
    """The records of ``<out_dir>/<split>.jsonl``."""
    with open(Path(out_dir) / f"{split}.jsonl") as f:
        for line in f:
            yield json.loads(line)
