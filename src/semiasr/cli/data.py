"""``semiasr data``: import corpora, run Lhotse recipes, inspect manifests, train tokenizers.

semiasr data import kaldi data/train out/train.jsonl        # jsonl | kaldi | nemo | folder
semiasr data prepare librispeech /corpora/LibriSpeech out/   # a Lhotse recipe, nothing downloaded
semiasr data info ../shared/data/fsdd --split train --check
semiasr data tokenizer train ../shared/data/fsdd tok.json --split train --kind bpe --vocab-size 64
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Manifests, corpus recipes and tokenizers.", no_args_is_help=True)
tokenizer_app = typer.Typer(help="Train and inspect tokenizers.", no_args_is_help=True)
app.add_typer(tokenizer_app, name="tokenizer")

_FORMATS = ("jsonl", "kaldi", "nemo", "folder")


@app.command("import")
def import_cmd(
    fmt: Annotated[str, typer.Argument(help="jsonl | kaldi | nemo | folder")],
    source: Annotated[Path, typer.Argument(help="The manifest file or folder to import.")],
    out: Annotated[Path, typer.Argument(help="The semiasr JSONL manifest to write.")],
    skip_bad: Annotated[
        bool, typer.Option(help="Skip and list bad items instead of failing.")
    ] = False,
    check_audio: Annotated[bool, typer.Option(help="Read every file's header.")] = True,
) -> None:
    """Import a corpus into a semiasr JSONL manifest (audio paths relative to OUT's folder)."""
    from semiasr.data import manifest as m
    from semiasr.errors import DataError

    importers = {
        "jsonl": m.import_jsonl,
        "kaldi": m.import_kaldi_dir,
        "nemo": m.import_nemo,
        "folder": m.import_folder,
    }
    if fmt not in importers:
        raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(_FORMATS)}", item=fmt)
    report = m.DataReport(skip_bad)
    cuts = importers[fmt](source, report=report)
    cuts = m.validate_cuts(cuts, check_audio=check_audio, report=report)
    n = m.write_jsonl(cuts, out)
    typer.echo(f"wrote {n} utterance(s) to {out}")
    if report.bad:
        typer.echo(report.summary(), err=True)


@app.command("prepare")
def prepare_cmd(
    name: Annotated[str, typer.Argument(help="A Lhotse recipe name, e.g. librispeech, yesno.")],
    corpus_dir: Annotated[Path, typer.Argument(help="The corpus, already on disk.")],
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: CORPUS_DIR/manifests).")
    ] = None,
) -> None:
    """Run a Lhotse corpus recipe on a corpus already downloaded; writes cuts_<split>.jsonl.gz."""
    from semiasr.data.manifest import prepare_recipe

    written = prepare_recipe(name, corpus_dir, out or corpus_dir / "manifests")
    for split, path in written.items():
        typer.echo(f"{split}: {path}")


@app.command("info")
def info_cmd(
    manifest: Annotated[Path, typer.Argument(help="A manifest file or corpus folder.")],
    split: Annotated[str | None, typer.Option(help="Split name (file or suggested_split).")] = None,
    check: Annotated[bool, typer.Option(help="Check every audio file's header too.")] = False,
) -> None:
    """Utterances, hours, speakers, durations, domains and characters of a manifest."""
    from semiasr.data.manifest import DataReport, load_manifest, validate_cuts

    report = DataReport(skip_bad=True)
    cuts = load_manifest(manifest, split, report=report)
    if check:
        cuts = validate_cuts(cuts, report=report)
    durs = [c.duration for c in cuts]
    speakers = {s.speaker for c in cuts for s in c.supervisions if s.speaker}
    domains = Counter(str((c.custom or {}).get("domain", "-")) for c in cuts)
    chars = Counter(ch for c in cuts for s in c.supervisions for ch in (s.text or ""))
    lines = [
        f"manifest     {manifest}" + (f" [{split}]" if split else ""),
        f"utterances   {len(durs)}",
    ]
    if durs:
        lines += [
            f"hours        {sum(durs) / 3600:.3f}",
            f"duration s   min {min(durs):.2f}  mean {sum(durs) / len(durs):.2f}  "
            f"max {max(durs):.2f}",
        ]
    lines += [
        f"speakers     {len(speakers)}",
        "domains      " + ", ".join(f"{k}: {v}" for k, v in sorted(domains.items())),
        f"characters   {''.join(sorted(chars))!r}",
    ]
    typer.echo("\n".join(lines))
    if report.bad:
        typer.echo(report.summary(), err=True)
        raise typer.Exit(1)


@tokenizer_app.command("train")
def tokenizer_train_cmd(
    manifest: Annotated[Path, typer.Argument(help="A manifest file or corpus folder.")],
    out: Annotated[Path, typer.Argument(help="Where to write the tokenizer (JSON).")],
    split: Annotated[str | None, typer.Option(help="Split name.")] = None,
    kind: Annotated[str, typer.Option(help="char | bpe | unigram")] = "char",
    vocab_size: Annotated[
        int, typer.Option(help="SentencePiece vocabulary, blank included.")
    ] = 256,
    lowercase: Annotated[bool, typer.Option(help="Lower-case the text first.")] = False,
) -> None:
    """Train a tokenizer on a manifest's transcripts and save it as JSON."""
    from semiasr.data.config import TokenizerConfig
    from semiasr.data.manifest import load_manifest
    from semiasr.data.tokenizer import build_tokenizer
    from semiasr.rundir import atomic_write_bytes

    cuts = load_manifest(manifest, split)
    texts = [" ".join(s.text or "" for s in c.supervisions) for c in cuts]
    tok = build_tokenizer(
        TokenizerConfig(kind=kind, vocab_size=vocab_size, lowercase=lowercase), texts
    )
    atomic_write_bytes(out, tok.to_bytes())
    typer.echo(f"{kind} tokenizer, vocab_size {tok.vocab_size} (blank = 0), written to {out}")


@tokenizer_app.command("show")
def tokenizer_show_cmd(
    path: Annotated[Path, typer.Argument(help="A tokenizer JSON file.")],
    text: Annotated[str | None, typer.Argument(help="Text to encode.")] = None,
) -> None:
    """Print a tokenizer's pieces, or the ids and pieces of TEXT."""
    from semiasr.data.tokenizer import tokenizer_from_bytes

    tok = tokenizer_from_bytes(path.read_bytes())
    if text is None:
        pieces = [tok.id_to_piece(i) for i in range(tok.vocab_size)]
        typer.echo(f"vocab_size {tok.vocab_size}: " + " ".join(pieces))
        return
    ids = tok.encode(text, item="argument")
    typer.echo(" ".join(f"{i}:{tok.id_to_piece(i)}" for i in ids))
