"""Training loop: loss falls, eval matches the scoring API, schedule, refusal to clobber runs."""
import json
import math

import pytest
import torch

from training_builders import tiny_config
from rescorer.data.batching import encode_sentences
from rescorer.data.corpus import read_sentences
from rescorer.errors import ConfigError
from rescorer.model.checkpoint import load_model
from rescorer.training.evaluate import evaluate_file
from rescorer.training.loop import train
from rescorer.training.schedule import PlateauSchedule


def test_loss_falls_and_files_are_written(corpus, tmp_path):
    result = train(tiny_config(corpus, tmp_path / "run", epochs=3, lr=0.01))
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [record["event"] for record in records] == ["epoch", "epoch", "epoch", "final"]
    valid = [record["valid_ppl"] for record in records[:3]]
    # 26 word types; a uniform model scores ~26, the grammar allows far less.
    assert valid[0] > valid[1] > valid[2]
    assert valid[2] < 8.0
    assert result.best_epoch == 3 and result.valid_ppl == valid[2]
    assert records[3]["test_ppl"] == result.test_ppl < 8.0
    assert {path.name for path in (tmp_path / "run").iterdir()} == {"last.pt", "model.pt", "log.jsonl", "cache"}
    # One token cache per text (train, valid, test) and the vocabulary chosen from the training text.
    cached = sorted(path.suffix or "entry" for path in (tmp_path / "run" / "cache").iterdir())
    assert cached == [".json", "entry", "entry", "entry"]


@pytest.mark.parametrize("solver, iterations", [("jacobi", 2), ("jacobi", 3), ("sequential", 4)])
def test_eval_ppl_equals_scoring_api(corpus, tmp_path, solver, iterations):
    """exp(mean NLL) from next_token_log_probs on each position's history == evaluate_file."""
    train(tiny_config(corpus, tmp_path / "run", epochs=1, solver=solver, iterations=iterations, lr=0.01))
    model, vocab = load_model(tmp_path / "run" / "model.pt")
    text = corpus[2]
    result = evaluate_file(model, vocab, text, rows=3)
    stream = encode_sentences(read_sentences(text), vocab)
    window = model.history_window or len(stream)
    starts = torch.nonzero(stream.resets).squeeze(1).tolist()
    histories, lengths, sentence_start = [], [], 0
    for position in range(len(stream)):
        if stream.resets[position]:
            sentence_start = position
        history = stream.inputs[max(sentence_start, position + 1 - window): position + 1].tolist()
        histories.append(history)
        lengths.append(len(history))
    width = max(lengths)
    padded = torch.tensor([row + [0] * (width - len(row)) for row in histories])
    log_probs = model.next_token_log_probs(padded, torch.tensor(lengths))
    nll = -log_probs.double().gather(1, stream.targets.unsqueeze(1)).sum().item()
    assert result.tokens == len(stream) == sum(len(s) + 1 for s in read_sentences(text))
    assert len(starts) == 40
    assert result.ppl == pytest.approx(math.exp(nll / len(stream)), rel=1e-5)


def test_plateau_schedule_decays_then_stops():
    schedule = PlateauSchedule(lr=1.0, decay=4.0, patience=2)
    assert [schedule.update(ppl) for ppl in (100.0, 90.0, 95.0, 91.0)] == [True, True, False, False]
    assert (schedule.lr, schedule.best_epoch, schedule.exhausted) == (0.0625, 2, True)
    again = PlateauSchedule(lr=5.0, decay=2.0, patience=9)
    again.load_state(schedule.state())
    assert again.state() == schedule.state()


def test_early_stop_when_valid_never_improves(corpus, tmp_path):
    # lr 0: the weights never change, so epochs 2.. never improve on epoch 1.
    result = train(tiny_config(corpus, tmp_path / "run", epochs=10, lr=0.0, patience=2))
    assert (result.best_epoch, result.epochs_run, result.stopped) == (1, 3, "early_stop")
    lrs = [json.loads(line).get("lr") for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert lrs[:3] == [0.0, 0.0, 0.0]


def test_existing_run_is_not_overwritten_and_resume_checks_settings(corpus, tmp_path):
    train(tiny_config(corpus, tmp_path / "run", epochs=1))
    with pytest.raises(ConfigError, match="already holds a training run"):
        train(tiny_config(corpus, tmp_path / "run", epochs=2))
    with pytest.raises(ConfigError, match="hidden_dim: 16 != 32"):
        train(tiny_config(corpus, tmp_path / "run", epochs=2, hidden_dim=32, resume=True))
    result = train(tiny_config(corpus, tmp_path / "run", epochs=2, resume=True))
    assert result.epochs_run == 2


def test_sentencepiece_training(corpus, tmp_path):
    result = train(tiny_config(corpus, tmp_path / "run", epochs=1, sp_vocab_size=30))
    model, vocab = load_model(result.model_path)
    assert type(vocab).__name__ == "SentencePieceVocabulary"
    assert model.config.vocab_size == vocab.size <= 30
    # The reported test PPL is model.pt's on the test text, and beats a uniform model.
    assert result.test_ppl == evaluate_file(model, vocab, corpus[2]).ppl < vocab.size


def test_training_text_shorter_than_the_batch_is_a_user_error(corpus, tmp_path):
    (tmp_path / "short.txt").write_text("a b\n")
    with pytest.raises(ConfigError, match=r"too short \(expected at least --batch-size 8 tokens, got 3\)") as error:
        train(tiny_config((tmp_path / "short.txt",) + corpus[1:], tmp_path / "run"))
    assert error.value.path == str(tmp_path / "short.txt")
