"""Run by tests/test_readme.py under Xvfb (not a test itself): runs the README's in-game
example exactly as written, except that ``base.run()`` renders FRAMES frames, saves the
window to SHOT and returns instead of running forever.

    python tests/readme_script.py README.md SHOT [--frames 20]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

EXAMPLE_SECTION = "## In a running game"


def example(readme: Path) -> str:
    """The first ```python block after EXAMPLE_SECTION."""
    text = readme.read_text(encoding="utf-8")
    section = text[text.index(EXAMPLE_SECTION):]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("readme")
    parser.add_argument("shot")
    parser.add_argument("--frames", type=int, default=20)
    args = parser.parse_args()

    from direct.showbase.ShowBase import ShowBase
    from panda3d.core import Filename

    def run(base) -> None:
        for _ in range(args.frames):
            base.taskMgr.step()
        base.win.saveScreenshot(Filename.fromOsSpecific(str(Path(args.shot).resolve())))

    ShowBase.run = run
    code = example(Path(args.readme))
    exec(compile(code, args.readme, "exec"), {"__name__": "__readme__"})


if __name__ == "__main__":
    main()
