"""Self-training on FSDD's held-out speakers: their audio without their transcripts.

The models of ``semiasr train fsdd`` (one per seed) label the test speakers' recordings
(``semiasr pseudo-label``: the seeds vote), and each seed's model is then fine-tuned on the four
training speakers plus those pseudo labels (noisy student: the recipe's speed, noise, reverberation
and SpecAugment stay on) and scored. No test transcript is used for training or for any choice.

So that no recording is scored by a model that trained on its own pseudo label, each test
speaker's recordings are split in two halves (A, B: alternate recordings in id order): a student
fine-tuned on A's pseudo labels is scored on B and the other way round, and the test WER of a
seed is over both halves (every test recording once). Round r + 1 takes its pseudo labels for A
from the vote of round r's students that were scored on A (trained on B), and likewise for B::

    python benchmarks/fsdd_self_training.py runs/fsdd runs/fsdd-s1 runs/fsdd-s2 \\
        --rounds 3 --jobs 2 --out runs/bench/fsdd-st

Students: full fine-tuning from the base run's averaged checkpoint, ``--steps`` updates at
``--lr`` (cosine, warm-up a tenth). With ``--split dev`` and runs of ``benchmarks/fsdd_recipe.py``
(three speakers, the fourth as ``dev``), the same protocol runs on the development speaker, which
is where its settings were chosen. Writes ``self_training.json`` and ``self_training.md`` to
``--out``; finished students are read back with ``--reuse``.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any


def write_halves(run: Path, split: str, out: Path) -> dict[str, Path]:
    """``out/half{A,B}.jsonl``: each speaker's utterances of ``split``, alternating in id order."""
    from semiasr.config import load_config
    from semiasr.data.manifest import load_split, write_jsonl

    cfg = load_config(run / "config.yaml")
    cuts = load_split(cfg.data.root, split)
    by_speaker: dict[str, list[Any]] = collections.defaultdict(list)
    for c in cuts:
        by_speaker[c.supervisions[0].speaker or ""].append(c)
    halves: dict[str, list[Any]] = {"A": [], "B": []}
    for spk in sorted(by_speaker):
        for i, c in enumerate(sorted(by_speaker[spk], key=lambda c: c.id)):
            halves["AB"[i % 2]].append(c)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for h, cs in halves.items():
        paths[h] = (out / f"half{h}.jsonl").resolve()
        write_jsonl(cs, paths[h])
    return paths


def repeat_manifest(path: Path, times: int) -> Path:
    """``path`` with every row written ``times`` times (ids ``<id>~rep<k>`` after the first), as
    ``<stem>.x<times>.jsonl`` beside it: the student meets each pseudo label that much more often
    (noisy student's mixing ratio of pseudo-labelled to labelled data); ``path`` for 1."""
    if times <= 1:
        return path
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    out = path.with_name(f"{path.stem}.x{times}.jsonl")
    with out.open("w", encoding="utf-8") as f:
        for k in range(times):
            for row in rows:
                f.write(json.dumps({**row, "id": row["id"] + (f"~rep{k}" if k else "")}) + "\n")
    return out


def pct(x: float | None) -> str:
    """A WER for the report; "n/a" where the split has no transcripts to score against."""
    return "n/a" if x is None else f"{x:.2f}%"


def other(half: str) -> str:
    return "B" if half == "A" else "A"


def score(
    run: Path, manifest: Path, which: str, neighbours: int = 0
) -> tuple[int, int, list[tuple[str, str]], int]:
    """(word errors, reference words, the (ref, hyp) pairs that differ, word errors after a
    ``neighbours``-nearest vote of the hypotheses within each speaker of the manifest — the
    transductive variant, see --test-neighbours; -1 when 0) of ``run`` on a manifest."""
    import copy

    from semiasr.data.manifest import load_split
    from semiasr.eval.wer import error_counts
    from semiasr.tasks import decode_split, load_trained
    from semiasr.tasks.pseudo import neighbour_labels

    dec = load_trained(run, which)
    utts = decode_split(dec, str(manifest))[0]
    errors = words = 0
    wrong = []
    for u in utts:
        e = error_counts(u.ref, u.hyp)
        errors += e.errors
        words += e.ref_len
        if u.ref != u.hyp:
            wrong.append((u.ref, u.hyp))
    voted_errors = -1
    if neighbours:
        hyps = {u.id: u.hyp for u in utts}
        cuts = [c for c in load_split(dec.cfg.data.root, str(manifest)) if c.id in hyps]
        data_cfg = copy.copy(dec.cfg.data)
        voted, _ = neighbour_labels(dec, str(manifest), data_cfg, cuts, hyps, neighbours)
        voted_errors = sum(error_counts(u.ref, voted[u.id]).errors for u in utts)
    return errors, words, wrong, voted_errors


def adapt_job(cmd: list[str], log: Path, threads: int) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with log.open("w") as f:
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode


def write_report(args: argparse.Namespace, halves: dict[str, Path], rounds: list[dict]) -> str:
    """Write ``self_training.json`` and ``.md`` for the rounds so far (after every round, so that
    a run cut short keeps what it finished); returns the markdown."""
    for rd in rounds:
        w = [s["wer"] for s in rd["seeds"]]
        rd["mean"], rd["sd"] = statistics.mean(w), statistics.stdev(w) if len(w) > 1 else 0.0
    report = {
        "runs": [str(r) for r in args.runs],
        "split": args.split,
        "steps": args.steps,
        "lr": args.lr,
        "neighbours": args.neighbours,
        "test_neighbours": args.test_neighbours,
        "candidates": args.candidates,
        "balance": args.balance,
        "min_agreement": args.min_agreement,
        "mix": args.mix,
        "halves": {h: str(p) for h, p in halves.items()},
        "rounds": rounds,
    }
    (args.out / "self_training.json").write_text(json.dumps(report, indent=1))
    nb = f"; pseudo labels by a {args.neighbours}-neighbour vote" if args.neighbours else ""
    if args.candidates:
        nb = (
            f"; closed-set pseudo labels over the `{args.candidates}` transcripts"
            + (
                f", posteriors averaged over {args.neighbours} neighbours"
                if args.neighbours
                else ""
            )
            + (", balanced to the training frequencies" if args.balance else "")
        )
    if args.mix:
        nb += f"; pseudo labels repeated to about {args.mix:g}× the labelled utterances"
    if args.min_agreement:
        nb += f"; labels with a share below {args.min_agreement:g} left out"
    lines = [
        f"# Self-training on `{args.split}` (no transcripts of it used)",
        "",
        f"Base runs: {', '.join(f'`{r}`' for r in args.runs)}; students: full fine-tuning, "
        f"{args.steps} updates at {args.lr:g} (cosine){nb}.",
        "",
        "| round | pseudo-label WER A / B (models' vote) | WER per seed % | mean ± sd % |",
        "| ---: | --- | --- | --- |",
    ]
    for rd in rounds:
        pl = rd.get("pseudo_labels")
        pls = (
            f"{pct(pl['A']['label_wer'])} / {pct(pl['B']['label_wer'])} "
            f"({pct(pl['A']['model_vote_wer'])} / {pct(pl['B']['model_vote_wer'])})"
            if pl
            else "–"
        )
        seeds = " / ".join(f"{s['wer']:.2f}" for s in rd["seeds"])
        if args.test_neighbours:
            voted = " / ".join(f"{s['wer_test_neighbours']:.2f}" for s in rd["seeds"])
            seeds += f" (test-time vote: {voted})"
        lines.append(f"| {rd['round']} | {pls} | {seeds} | {rd['mean']:.2f} ± {rd['sd']:.2f} |")
    text = "\n".join(lines) + "\n"
    (args.out / "self_training.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="base runs (one per seed)")
    ap.add_argument("--split", default="test", help="the held-out speakers' split")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument(
        "--test-neighbours",
        type=int,
        default=0,
        help="also report each model's WER after a K-nearest vote of its own hypotheses within "
        "each speaker of the half it is scored on: transductive decoding (it reads the other "
        "recordings of that half's speaker, no transcripts), reported beside the plain WER",
    )
    ap.add_argument(
        "--neighbours",
        type=int,
        default=0,
        help="relabel each pseudo label by the vote of its K nearest recordings of the same "
        "speaker within its half (DTW of features; semiasr pseudo-label --neighbours)",
    )
    ap.add_argument(
        "--candidates",
        default=None,
        help="closed-set pseudo labels: 'train' (the training transcripts) or a file of one per "
        "line (semiasr pseudo-label --candidates); --neighbours then smooths posteriors",
    )
    ap.add_argument(
        "--balance",
        action="store_true",
        help="with --candidates: balance each speaker's posteriors to the training frequencies",
    )
    ap.add_argument(
        "--min-agreement",
        type=float,
        default=0.0,
        help="leave out pseudo labels whose share is below this (semiasr pseudo-label "
        "--min-agreement; with --candidates the label's final posterior)",
    )
    ap.add_argument(
        "--mix",
        type=float,
        default=0.0,
        help="repeat each round's pseudo-labelled manifest so that it holds about MIX times as "
        "many utterances as the labelled training splits (0: once)",
    )
    ap.add_argument("--out", type=Path, default=Path("runs/bench/fsdd-st"))
    args = ap.parse_args(argv)

    from semiasr.config import load_config
    from semiasr.data.manifest import load_split
    from semiasr.tasks.pseudo import pseudo_label

    names = [r.name for r in args.runs]
    if len(set(names)) != len(names):
        raise SystemExit(f"fsdd_self_training.py: base runs need distinct folder names: {names}")
    halves = write_halves(args.runs[0], args.split, args.out)
    base_data = load_config(args.runs[0] / "config.yaml").data
    train_splits = list(base_data.train)
    n_labelled = sum(len(load_split(base_data.root, s)) for s in train_splits)
    run_root = (args.out / "runs").resolve()
    run_root.mkdir(parents=True, exist_ok=True)

    def seed_wers(models: dict[tuple[Path, str], tuple[Path, str]]) -> list[dict[str, Any]]:
        """Per base run: WER over both halves; ``models`` maps (base, half scored) → (run, ckpt)."""
        rows = []
        for base in args.runs:
            e = w = ev = 0
            wrong: list[tuple[str, str]] = []
            for h in "AB":
                run, which = models[(base, h)]
                de, dw, dwrong, dev = score(run, halves[h], which, args.test_neighbours)
                e, w, ev = e + de, w + dw, ev + dev
                wrong += dwrong
            common = collections.Counter(wrong).most_common(3)
            row = {
                "base": str(base),
                "wer": 100.0 * e / max(w, 1),
                "confusions": [[r, h, n] for (r, h), n in common],
            }
            if args.test_neighbours:
                row["wer_test_neighbours"] = 100.0 * ev / max(w, 1)
            rows.append(row)
        return rows

    base_models = {(b, h): (b, "averaged") for b in args.runs for h in "AB"}
    rounds: list[dict[str, Any]] = [{"round": 0, "seeds": seed_wers(base_models)}]
    write_report(args, halves, rounds)
    print("round 0: " + ", ".join(f"{s['wer']:.2f}" for s in rounds[0]["seeds"]), flush=True)
    if args.test_neighbours:
        print(
            "round 0, test-time vote: "
            + ", ".join(f"{s['wer_test_neighbours']:.2f}" for s in rounds[0]["seeds"]),
            flush=True,
        )
    teachers = {h: [(b, "averaged") for b in args.runs] for h in "AB"}
    candidates = args.candidates
    if candidates == "train":  # the base run's transcripts: later teachers also trained on labels
        from semiasr.data.loader import corpus_texts

        base_cfg = load_config(args.runs[0] / "config.yaml")
        texts = corpus_texts(base_cfg.data, list(base_cfg.data.train))
        candidates = str((args.out / "candidates.txt").resolve())
        Path(candidates).write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    for r in range(1, args.rounds + 1):
        labels, pl_info = {}, {}
        for h in "AB":
            ckpts = {which for _, which in teachers[h]}
            pl = (args.out / f"round{r}" / f"pseudo{h}.jsonl").resolve()
            s = pseudo_label(
                [run for run, _ in teachers[h]],
                str(halves[h]),
                pl,
                checkpoint=ckpts.pop(),
                neighbours=args.neighbours,
                candidates=candidates,
                balance=args.balance,
                min_agreement=args.min_agreement,
            )
            labels[h] = repeat_manifest(pl, round(args.mix * n_labelled / max(s.written, 1)))
            pl_info[h] = {
                "written": s.written,
                "repeated": labels[h].name,
                "label_wer": s.reference_wer,
                "kept_label_wer": s.written_reference_wer,  # of the labels kept (min_agreement)
                # the models' vote; with candidates, their averaged closed-set posteriors' argmax
                "model_vote_wer": s.model_vote_reference_wer
                if s.model_vote_reference_wer is not None
                else s.closed_set_reference_wer,
                "changed_by_neighbours": s.changed_by_neighbours,
                "changed_by_balance": s.changed_by_balance,
                "closed_set_wer": s.closed_set_reference_wer,
            }
            print(
                f"round {r}: pseudo labels of half {h}: WER {pct(s.reference_wer)}, "
                f"{s.written} kept (WER {pct(s.written_reference_wer)}) "
                f"(models' vote {pct(pl_info[h]['model_vote_wer'])})",
                flush=True,
            )
        jobs = {}
        for base in args.runs:
            for h in "AB":  # train on h's pseudo labels, score on the other half
                name = f"{base.name}-r{r}-{h}"
                train = ",".join(f"'{s}'" for s in [*train_splits, str(labels[h])])
                jobs[(base, other(h))] = (
                    name,
                    [
                        sys.executable, "-m", "semiasr", "adapt", str(base), "--method", "full",
                        "--name", name, "--overwrite", f"run_root={run_root}",
                        f"data.train=[{train}]", "data.valid=[]",
                        f"data.test=['{halves[other(h)]}']",
                        f"train.max_steps={args.steps}", f"optim.lr={args.lr}",
                        "sched.name=cosine", f"sched.warmup_steps={max(args.steps // 10, 1)}",
                        "train.progress=false",
                    ],
                )  # fmt: skip

        def finished(name: str, cmd: list[str]) -> bool:
            """Reusable: trained to the end by exactly this command (recorded beside the run)."""
            rec = run_root / f"{name}.cmd.json"
            done = (run_root / name / "adaptation.pt").is_file() and rec.is_file()
            return done and json.loads(rec.read_text()) == cmd[1:]

        todo = {k: v for k, v in jobs.items() if not (args.reuse and finished(*v))}
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            codes = dict(
                zip(
                    todo,
                    pool.map(
                        lambda v: adapt_job(v[1], run_root / f"{v[0]}.log", args.threads),
                        todo.values(),
                    ),
                )
            )
        for k, c in codes.items():
            if c == 0:
                name, cmd = todo[k]
                (run_root / f"{name}.cmd.json").write_text(json.dumps(cmd[1:]))
        failed = [jobs[k][0] for k, c in codes.items() if c != 0]
        if failed:
            raise SystemExit(f"fsdd_self_training.py: {failed} failed; logs in {run_root}")
        students = {k: (run_root / v[0], "last") for k, v in jobs.items()}
        rounds.append({"round": r, "pseudo_labels": pl_info, "seeds": seed_wers(students)})
        teachers = {h: [students[(b, h)] for b in args.runs] for h in "AB"}
        write_report(args, halves, rounds)
        print(
            f"round {r}: " + ", ".join(f"{s['wer']:.2f}" for s in rounds[-1]["seeds"]), flush=True
        )
        if args.test_neighbours:
            print(
                f"round {r}, test-time vote: "
                + ", ".join(f"{s['wer_test_neighbours']:.2f}" for s in rounds[-1]["seeds"]),
                flush=True,
            )

    print(write_report(args, halves, rounds))


if __name__ == "__main__":
    main()
