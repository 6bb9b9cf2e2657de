#!/usr/bin/env python3
"""Print one of the README's two commands, exactly as the README writes them.

    python3 .ci/readme_commands.py run     # the command that runs the engine on the bundled session
    python3 .ci/readme_commands.py test    # the command that runs the tests

Both live in the README's "## The two commands" section: the run command is the first `sh`
block of the section, the test command the first `sh` block after the line that says "Run
the tests". CI runs what this prints, so an edit to the README's commands is what CI follows.
"""

import pathlib
import re
import sys


def blocks(section: str):
    """(offset, body) of every ```sh fenced block in `section`."""
    for m in re.finditer(r"^```sh\n(.*?)^```", section, re.S | re.M):
        yield m.start(), m.group(1).strip()


def main() -> int:
    if len(sys.argv) != 2 or sys.argv[1] not in ("run", "test"):
        print(__doc__, file=sys.stderr)
        return 2
    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    m = re.search(r"^## The two commands\n(.*?)(?=^## )", readme, re.S | re.M)
    if not m:
        print("README.md has no '## The two commands' section", file=sys.stderr)
        return 1
    section = m.group(1)
    found = list(blocks(section))
    if sys.argv[1] == "run":
        cmd = found[0][1] if found else None
    else:
        at = section.find("Run the tests")
        cmd = next((body for off, body in found if at >= 0 and off > at), None)
    if not cmd or "\n" in cmd:
        print(f"README.md: no single-line {sys.argv[1]} command in '## The two commands'", file=sys.stderr)
        return 1
    print(cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
