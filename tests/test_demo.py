from embedforge.demo import run_demo


def test_demo_beats_raw_pixels_and_reaches_the_map_at_r_target(capsys) -> None:
    rows = run_demo(seed=0)
    learned, raw = rows["batch-hard triplet (64-d)"], rows["raw pixels (64-d)"]
    assert learned["mean_average_precision_at_r"] >= 0.95
    assert 0.5 < raw["mean_average_precision_at_r"] < 0.6
    printed = capsys.readouterr().out
    assert "MAP@R" in printed and "raw pixels" in printed
