"""The export progress bar: drawn on a terminal, silent otherwise."""

from cli.audit import Progress


def test_progress_bar_draws_only_when_enabled(capsys):
    bar = Progress("exporting", enabled=True)
    for done in range(1, 5):
        bar(done, 4)
    bar.close()
    err = capsys.readouterr().err
    assert err.endswith("exporting [#########################] 4/4\n")
    assert err.count("\r") == 4
    quiet = Progress("exporting", enabled=False)
    quiet(1, 1)
    quiet.close()
    assert capsys.readouterr().err == ""
