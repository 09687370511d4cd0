import subprocess
import sys

from embedforge import __version__
from embedforge.cli import main


def test_version_and_help_work_from_the_console_script() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "embedforge", "--version"], capture_output=True, text=True
    )
    assert run.returncode == 0
    assert run.stdout.strip() == f"embedforge {__version__}"
    assert main([]) == 0
