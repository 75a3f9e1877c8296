"""Choose FSDD recipe settings without the test speakers: leave one training speaker out.

FSDD's speaker-disjoint split trains on george, jackson, lucas and yweweler and tests on theo and
nicolas. To compare settings without looking at theo and nicolas, this trains each variant on three
of the training speakers and scores it on the fourth (``--dev-speaker``, default yweweler: a German
accent, and the quietest recordings of the four). The corpus is a manifest written to ``--out``
whose rows point at the audio under ``--fsdd`` (nothing is copied); its splits are ``train`` (three
speakers) and ``dev`` (one).

Each ``--variant NAME [KEY=VALUE ...]`` trains ``conf/fsdd.yaml`` with those overrides (and
``--set`` ones common to all), ``--jobs`` at a time, then decodes the dev speaker greedily with the
averaged checkpoint. Finished runs are read back instead of trained again (``--reuse``)::

    python benchmarks/fsdd_recipe.py --jobs 2 --out runs/bench/fsdd-dev \\
        --variant utterance data.features.normalize=utterance \\
        --variant global data.features.normalize=global \\
        --variant speaker data.features.normalize=speaker

Writes ``fsdd_recipe.json`` and ``fsdd_recipe.md`` (a table: variant, overrides, dev WER, digits
confused most) to ``--out``.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

TEST_SPEAKERS = ("theo", "nicolas")


def write_corpus(fsdd: Path, out: Path, dev_speaker: str) -> dict[str, int]:
    """``out/manifest.jsonl``: FSDD's training speakers, ``dev_speaker`` as split ``dev``; the test
    speakers are left out altogether. Returns utterances per split."""
    src = fsdd / "manifest.jsonl"
    if not src.is_file():
        raise SystemExit(f"fsdd_recipe.py: {src} not found (is --fsdd the FSDD corpus?)")
    rows = [json.loads(x) for x in src.read_text().splitlines() if x.strip()]
    speakers = {r["speaker"] for r in rows} - set(TEST_SPEAKERS)
    if dev_speaker not in speakers:
        raise SystemExit(
            f"fsdd_recipe.py: --dev-speaker {dev_speaker!r} is not a training speaker "
            f"({', '.join(sorted(speakers))})"
        )
    kept = []
    for r in rows:
        if r["speaker"] in TEST_SPEAKERS:
            continue
        kept.append(
            {
                **r,
                "audio": str((fsdd / r["audio"]).resolve()),
                "suggested_split": "dev" if r["speaker"] == dev_speaker else "train",
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    return dict(collections.Counter(r["suggested_split"] for r in kept))


def confusions(utts: list[Any], top: int = 3) -> list[tuple[str, str, int]]:
    """The ``top`` most frequent (reference, hypothesis) word substitutions."""
    c = collections.Counter((u.ref, u.hyp) for u in utts if u.ref != u.hyp)
    return [(r, h, n) for (r, h), n in c.most_common(top)]


def score(run: Path) -> dict[str, Any]:
    from semiasr.eval import evaluate
    from semiasr.tasks import decode_split, load_trained

    utts = decode_split(load_trained(run, "averaged"), "dev")[0]
    return {"dev_wer": evaluate(utts).wer, "confusions": confusions(utts)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fsdd", type=Path, default=Path("../shared/data/fsdd"))
    ap.add_argument("--dev-speaker", default="yweweler")
    ap.add_argument(
        "--variant",
        nargs="+",
        action="append",
        required=True,
        metavar="NAME [KEY=VALUE ...]",
        help="a name and its config overrides; repeat for each variant",
    )
    ap.add_argument("--set", nargs="*", default=[], help="overrides for every variant")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="threads per training process")
    ap.add_argument("--reuse", action="store_true", help="read back finished runs")
    ap.add_argument("--out", type=Path, default=Path("runs/bench/fsdd-dev"))
    args = ap.parse_args(argv)

    from sweep import run_parallel

    corpus = args.out / "corpus"
    sizes = write_corpus(args.fsdd, corpus, args.dev_speaker)
    print(f"corpus {corpus}: {sizes}", flush=True)
    common = [f"data.root={corpus.resolve()}", "data.test=[dev]", *args.set]
    runs = {v[0]: [*common, *v[1:]] for v in args.variant}
    if len(runs) != len(args.variant):
        raise SystemExit("fsdd_recipe.py: variant names must differ")
    run_root = args.out / "runs"
    done = {
        n for n in runs if args.reuse and (run_root / n / "checkpoints" / "averaged.pt").is_file()
    }
    todo = {n: o for n, o in runs.items() if n not in done}
    if todo:
        result = run_parallel(todo, "fsdd", run_root, args.jobs, args.threads)
        failed = [n for n, r in result.items() if r["exit_code"] != 0]
        if failed:
            logs = ", ".join(str(run_root / f"{n}.log") for n in failed)
            raise SystemExit(f"fsdd_recipe.py: run(s) {failed} failed; see {logs}")
    rows = []
    for name, overrides in runs.items():
        r = score(run_root / name)
        rows.append({"variant": name, "overrides": overrides[len(common) :], **r})
        print(f"{name}: dev WER {r['dev_wer']:.2f}%", flush=True)
    report = {"dev_speaker": args.dev_speaker, "corpus": sizes, "set": args.set, "rows": rows}
    (args.out / "fsdd_recipe.json").write_text(json.dumps(report, indent=1))
    lines = [
        f"# FSDD recipe variants, dev speaker {args.dev_speaker}",
        "",
        f"Trained on {sizes.get('train', 0)} recordings of three speakers, scored on the "
        f"{sizes.get('dev', 0)} of {args.dev_speaker} (greedy, averaged checkpoint). Common "
        f"overrides: `{' '.join(args.set) or '-'}`.",
        "",
        "| variant | overrides | dev WER % | most confused (ref → hyp × n) |",
        "| --- | --- | ---: | --- |",
    ]
    for r in rows:
        conf = ", ".join(f"{a} → {b or '∅'} × {n}" for a, b, n in r["confusions"])
        lines.append(
            f"| {r['variant']} | `{' '.join(r['overrides']) or '-'}` | {r['dev_wer']:.2f} | {conf} |"
        )
    (args.out / "fsdd_recipe.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
