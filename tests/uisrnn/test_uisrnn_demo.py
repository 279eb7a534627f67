"""The UIS-RNN demo writes its files under --out_dir (default exp/uisrnn_demo), never into the working directory."""

import pytest

pytest.importorskip("tensorflow")

from unspeech.uisrnn import demo  # noqa: E402


@pytest.mark.slow
def test_demo_keeps_its_files_in_out_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["--observation_dim", "8", "--rnn_hidden_size", "8", "--train_iteration", "5", "--num_train_sequences", "4",
            "--num_test_sequences", "2", "--num_processes", "1"]
    assert demo.main(args) == 0
    assert "averaged accuracy" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]
    files = sorted(p.name for p in (tmp_path / "exp" / "uisrnn_demo").iterdir())
    assert files == ["layer_8_1_0.2_result.txt", "saved_model.uisrnn.npz"]
    assert demo.main(args + ["--out_dir", "elsewhere", "--result_file", "none"]) == 0
    assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == ["saved_model.uisrnn.npz"]
