"""`semiasr data` sub-commands through typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from semiasr.cli.data import app
from semiasr.data.manifest import load_manifest
from semiasr.data.tokenizer import tokenizer_from_bytes

runner = CliRunner()


def test_data_cli_import_info_tokenizer(tmp_path: Path, make_corpus) -> None:
    root = make_corpus()
    out = tmp_path / "out" / "train.jsonl"
    r = runner.invoke(app, ["import", "jsonl", str(root / "source_train.jsonl"), str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote 24 utterance(s)" in r.output
    assert len(load_manifest(out)) == 24
    r = runner.invoke(app, ["info", str(root), "--split", "source_train", "--check"])
    assert r.exit_code == 0, r.output
    assert "utterances   24" in r.output and "source: 24" in r.output
    tok_path = tmp_path / "tok.json"
    r = runner.invoke(
        app, ["tokenizer", "train", str(out), str(tok_path), "--kind", "bpe", "--vocab-size", "30"]
    )
    assert r.exit_code == 0, r.output
    tok = tokenizer_from_bytes(tok_path.read_bytes())
    assert tok.vocab_size <= 30 and json.loads(tok_path.read_text())["kind"] == "bpe"
    r = runner.invoke(app, ["tokenizer", "show", str(tok_path), "YES NO"])
    assert r.exit_code == 0 and ":" in r.output


def test_data_cli_import_skip_bad(tmp_path: Path, make_corpus) -> None:
    root = make_corpus()
    (root / "audio" / "target_test_000.wav").unlink()
    out = tmp_path / "t.jsonl"
    r = runner.invoke(app, ["import", "jsonl", str(root / "target_test.jsonl"), str(out)])
    assert r.exit_code != 0 and "target_test_000" in str(r.exception)
    r = runner.invoke(
        app, ["import", "jsonl", str(root / "target_test.jsonl"), str(out), "--skip-bad"]
    )
    assert r.exit_code == 0 and "wrote 5" in r.output and "1 bad item(s) skipped" in r.output


def test_data_cli_prepare_unknown_recipe(tmp_path: Path) -> None:
    r = runner.invoke(app, ["prepare", "no_such_corpus", str(tmp_path)])
    assert r.exit_code != 0 and "no recipe named 'no_such_corpus'" in str(r.exception)


def test_data_cli_prepare_lhotse_recipe_on_yesno(tmp_path: Path, shared_data: Path) -> None:
    r = runner.invoke(
        app,
        ["prepare", "yesno", str(shared_data / "yesno" / "waves_yesno"), "--out", str(tmp_path)],
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "cuts_train.jsonl.gz").is_file()
    cuts = load_manifest(tmp_path, "test")
    assert len(cuts) == 30 and cuts[0].supervisions[0].text.split()[0] in {"YES", "NO"}


def test_the_entry_point_returns_a_command_s_exit_code(make_corpus) -> None:
    """`semiasr` (semiasr.cli.app.main) exits with the code a command raises typer.Exit with: a
    --check that finds a bad item exits 1, so `semiasr data info … --check && train` stops."""
    from semiasr.cli.app import main

    root = make_corpus()
    assert main(["data", "info", str(root), "--split", "target_test", "--check"]) == 0
    (root / "audio" / "target_test_000.wav").unlink()
    assert main(["data", "info", str(root), "--split", "target_test", "--check"]) == 1
